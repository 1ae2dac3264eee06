"""Running a feature job end to end: write every split in every format, a monitoring baseline and a manifest.

All writes go through ``spark_jobs.estimators.training_channels`` (executors write their own part files, local or
S3). Layout under the output location::

    train/{csv,parquet,recordio}/part-NNNNN.*      validation/...      test/...
    baseline/part-00000.csv                         (train features with a header, for Model Monitor)
    manifest.json
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame

from spark_jobs.estimators.training_channels import ChannelInfo, ChannelSpec, write_channels
from spark_jobs.storage import Destination

logger = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "recordio")


@dataclass(frozen=True)
class JobOutput:
    """What a feature job wrote (and what goes into ``manifest.json``)."""

    channels: dict[str, dict[str, ChannelInfo]]
    baseline: ChannelInfo
    manifest_uri: str


def split_specs(
    output: Destination, columns: tuple[str, ...], splits: tuple[str, ...], formats: tuple[str, ...]
) -> list[ChannelSpec]:
    return [
        ChannelSpec(f"{split}.{fmt}", output.child(split, fmt), fmt, columns, where=split)
        for split in splits
        for fmt in formats
    ]


def write_outputs(
    encoded: DataFrame,
    output: Destination,
    *,
    label: str,
    features: list[str],
    split_column: str,
    splits: tuple[str, ...],
    formats: tuple[str, ...] = FORMATS,
    baseline_split: str = "train",
) -> tuple[dict[str, dict[str, ChannelInfo]], ChannelInfo]:
    """Every split x format in one pass over ``encoded``, then the baseline (one file, with a header)."""
    columns = (label, *features)
    written = write_channels(encoded, split_specs(output, columns, splits, formats), route_column=split_column)
    channels = {split: {fmt: written[f"{split}.{fmt}"] for fmt in formats} for split in splits}
    baseline_spec = ChannelSpec(
        "baseline",
        output.child("baseline"),
        "csv",
        tuple(features),
        where=baseline_split,
        label_first=False,
        header=True,
    )
    baseline = write_channels(encoded.coalesce(1), [baseline_spec], route_column=split_column)["baseline"]
    return channels, baseline


def write_manifest(output: Destination, document: dict[str, Any]) -> str:
    target = output.child("manifest.json")
    target.put_bytes(json.dumps(document, indent=2, sort_keys=True).encode())
    logger.info("wrote manifest %s", target.uri)
    return target.uri


def manifest_document(
    *,
    job: str,
    source: str,
    label: str,
    features: list[str],
    channels: dict[str, dict[str, ChannelInfo]],
    baseline: ChannelInfo,
    extra: dict[str, Any],
) -> dict[str, Any]:
    return {
        "job": job,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": source,
        "label": label,
        "label_position": 0,
        "features": features,
        "channels": {
            split: {fmt: info.to_json() for fmt, info in by_fmt.items()} for split, by_fmt in channels.items()
        },
        "baseline": baseline.to_json(),
        **extra,
    }
