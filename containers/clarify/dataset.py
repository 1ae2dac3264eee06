"""The dataset: files under the ``dataset`` input (or ``dataset_uri``) read into one frame, and each column's role.

CSV with or without a header row, JSON Lines and JSON (``features`` / ``label`` / ``predicted_label`` as JMESPath),
Parquet. Column references are names or 0-based indices; a reference that does not resolve is a ``UserError``
naming the field, never a silently wrong column.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from containers.clarify.config import AnalysisConfig, Column
from containers.clarify.paths import search_path
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["Dataset", "load_dataset", "read_frame", "resolve_column"]


@dataclass(frozen=True)
class Dataset:
    """The data and the name of every role column (``None`` when not configured)."""

    frame: pd.DataFrame
    label: str | None
    predicted_label: str | None
    group_variable: str | None
    joinsource: str | None
    features: tuple[str, ...]

    def feature_frame(self) -> pd.DataFrame:
        return self.frame.loc[:, list(self.features)]


def resolve_column(frame: pd.DataFrame, ref: Column, key: str) -> str:
    """The name of the column ``ref`` (a name, or a 0-based index) in ``frame``."""
    columns = [str(c) for c in frame.columns]
    if isinstance(ref, str) and ref in columns:
        return ref
    if isinstance(ref, int) and 0 <= ref < len(columns):
        return columns[ref]
    raise UserError(
        f"analysis_config.json: '{key}' names column {ref!r}, which is not in the dataset (columns: {columns}). "
        "Fix: use one of these names or a 0-based index."
    )


def _data_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and not any(part.startswith((".", "_")) for part in p.parts[-1:])
    )
    if not files:
        raise UserError(f"No dataset found under {root}. Fix: give a ProcessingInput named 'dataset' or 'dataset_uri'.")
    return files


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path, headers: Sequence[str] | None) -> pd.DataFrame:
    text = path.read_text(encoding="utf-8")
    first = next((line for line in text.splitlines() if line.strip()), "")
    cells = [cell.strip().strip('"') for cell in first.split(",")]
    if headers is not None:
        has_header = cells == list(headers)
    else:
        has_header = not all(_is_number(cell) for cell in cells if cell)
    frame = pd.read_csv(io.StringIO(text), header=0 if has_header else None, skipinitialspace=True)
    if headers is not None:
        if len(headers) != frame.shape[1]:
            raise UserError(
                f"analysis_config.json: 'headers' has {len(headers)} names but {path.name} has {frame.shape[1]} "
                "columns. Fix: give one header per column, label included."
            )
        frame.columns = list(headers)
    elif not has_header:
        frame.columns = [f"column_{i}" for i in range(frame.shape[1])]
    return frame


def _path_value(document: Any, expression: str) -> Any:
    """A JMESPath subset: ``a.b``, ``a[0]``, ``a[-1]`` and ``a[*].b`` projections."""
    value = document
    for part in expression.replace("[", ".[").split("."):
        if not part:
            continue
        if part == "[*]":
            return [_path_value(item, expression.split("[*]", 1)[1].lstrip(".")) for item in value]
        if part.startswith("["):
            value = value[int(part[1:-1])] if isinstance(value, list) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def _json_rows(records: Sequence[Any], config: AnalysisConfig) -> pd.DataFrame:
    assert config.features is not None
    features = [_path_value(record, config.features) for record in records]
    if any(not isinstance(row, list) for row in features):
        raise UserError(f"analysis_config.json: 'features' ({config.features}) does not select a list in every record.")
    frame = pd.DataFrame(features)
    extra = [(config.label, "label"), (config.predicted_label, "predicted_label")]
    names = [f"column_{i}" for i in range(frame.shape[1])]
    for expression, key in extra:
        if expression is None:
            continue
        values = [_path_value(record, str(expression)) for record in records]
        if all(v is None for v in values):
            raise UserError(f"analysis_config.json: '{key}' ({expression}) selects nothing in the records.")
        frame[len(names)] = values
        names.append(str(expression))
    if config.headers is not None and len(config.headers) == len(names):
        names = list(config.headers)
    frame.columns = names
    return frame


def _read_json(path: Path, config: AnalysisConfig) -> pd.DataFrame:
    text = path.read_text(encoding="utf-8")
    try:
        if config.dataset_type == "application/jsonlines":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            document = json.loads(text)
            records = document if isinstance(document, list) else [document]
    except json.JSONDecodeError as exc:
        raise UserError(f"{path.name} is not valid {config.dataset_type}: {exc}") from exc
    if config.dataset_type == "application/json" and len(records) == 1 and config.features:
        whole = _path_value(records[0], config.features)
        if isinstance(whole, list) and whole and isinstance(whole[0], list):
            return _json_document(records[0], whole, config)
    return _json_rows(records, config)


def _json_document(document: Any, rows: list[Any], config: AnalysisConfig) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    names = [f"column_{i}" for i in range(frame.shape[1])]
    for expression in (config.label, config.predicted_label):
        if expression is not None:
            frame[len(names)] = _path_value(document, str(expression))
            names.append(str(expression))
    frame.columns = list(config.headers) if config.headers and len(config.headers) == len(names) else names
    return frame


def read_frame(path: Path, config: AnalysisConfig) -> pd.DataFrame:
    """One file (or a directory of files) as a frame, by ``dataset_type``."""
    frames = []
    for file in _data_files(path):
        if config.dataset_type == "text/csv":
            frames.append(_read_csv(file, config.headers))
        elif config.dataset_type == "application/x-parquet":
            frames.append(pd.read_parquet(file))
        else:
            frames.append(_read_json(file, config))
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _fetch(uri: str, scratch: Path) -> Path:
    if not uri.startswith("s3://"):
        return search_path(uri)
    import boto3  # lazily: only dataset_uri on S3 needs it

    bucket, _, prefix = uri[5:].partition("/")
    s3 = boto3.client("s3")
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = scratch / item["Key"][len(prefix) :].lstrip("/")
            target = target if target != scratch else scratch / Path(item["Key"]).name
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))
    return scratch


def load_dataset(config: AnalysisConfig, data_dir: Path) -> Dataset:
    """Read the dataset and resolve the role of every column."""
    source = data_dir
    with tempfile.TemporaryDirectory(prefix="clarify-data-") as scratch:
        if config.dataset_uri:
            source = _fetch(config.dataset_uri, Path(scratch))
        frame = read_frame(source, config)
    if frame.empty:
        raise UserError("The dataset has no rows. Fix: point the 'dataset' input at a non-empty file.")
    logger.info("dataset: %d rows x %d columns", frame.shape[0], frame.shape[1])
    return _roles(frame, config)


def _roles(frame: pd.DataFrame, config: AnalysisConfig) -> Dataset:
    def optional(ref: Column | None, key: str) -> str | None:
        return None if ref is None else resolve_column(frame, ref, key)

    label = optional(config.label, "label")
    predicted = optional(config.predicted_label, "predicted_label")
    joinsource = optional(config.joinsource, "joinsource_name_or_index")
    excluded = {resolve_column(frame, ref, "excluded_columns") for ref in config.excluded_columns}
    non_features = {label, predicted, joinsource} | excluded
    features = tuple(c for c in frame.columns if c not in non_features)
    if not features:
        raise UserError("The dataset has no feature columns left after label, predicted label and exclusions.")
    group = optional(config.group_variable, "group_variable")
    return Dataset(frame, label, predicted, group, joinsource, features)
