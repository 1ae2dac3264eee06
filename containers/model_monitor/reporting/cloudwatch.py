"""CloudWatch metrics (docs/reference/model-monitor-files.md#cloudwatch-metrics): written as PutMetricData records, and
published when a local endpoint is set.

Records go to ``/opt/ml/output/metrics/cloudwatch/cloudwatch_metrics.jsonl`` (the BYOC contract's directory), one
``{"Namespace", "MetricName", "Timestamp", "Dimensions", "Value" | "StatisticValues", "Unit"}`` object a line, so the
control plane can forward them. When ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_CLOUDWATCH``) is set the analyzer
also calls PutMetricData itself with boto3 (imported lazily); without an endpoint, or when the call fails, it logs
one line and carries on: metrics never fail a monitoring execution.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["MetricRecord", "data_quality_metrics", "dimensions", "model_quality_metrics", "publish", "write_metrics"]

MetricRecord = dict[str, Any]
BATCH = 20


def dimensions(endpoint: str, schedule: str) -> list[dict[str, str]]:
    dims = []
    if endpoint:
        dims.append({"Name": "Endpoint", "Value": endpoint})
    if schedule:
        dims.append({"Name": "MonitoringSchedule", "Value": schedule})
    return dims


def namespace_for(namespace: str, endpoint: str) -> str:
    """Endpoint jobs use the ``Endpoints`` namespace; batch-transform jobs the ``ModelMonitoring`` one."""
    return namespace if endpoint else namespace.replace("/Endpoints/", "/ModelMonitoring/")


def data_quality_metrics(
    features: Sequence[Mapping[str, Any]],
    item_count: int,
    drift: Mapping[str, float],
    dims: list[dict[str, str]],
    stamp: datetime,
) -> list[MetricRecord]:
    """``feature_data_<f>`` (numeric), ``feature_non_null_<f>`` and ``feature_baseline_drift_<f>`` per feature."""
    records: list[MetricRecord] = []
    when = stamp.isoformat()
    for feature in features:
        name = str(feature["name"])
        numeric = feature.get("numerical_statistics")
        stats = numeric or feature.get("string_statistics") or {}
        present = float((stats.get("common") or {}).get("num_present", 0))
        if numeric and present > 0:
            values = {
                "SampleCount": present,
                "Sum": numeric["sum"],
                "Minimum": numeric["min"],
                "Maximum": numeric["max"],
            }
            records.append(_record(f"feature_data_{name}", when, dims, statistic_values=values))
        completeness = present / item_count if item_count else 0.0
        records.append(_record(f"feature_non_null_{name}", when, dims, value=completeness))
        if name in drift and drift[name] == drift[name]:  # NaN (no comparison possible) is not published
            records.append(_record(f"feature_baseline_drift_{name}", when, dims, value=drift[name]))
    return records


def model_quality_metrics(
    metrics: Mapping[str, Any], dims: list[dict[str, str]], stamp: datetime
) -> list[MetricRecord]:
    """One metric per scalar model-quality metric (``f1``, ``mse``, …)."""
    when = stamp.isoformat()
    out = []
    for name, entry in metrics.items():
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, int | float) and value == value:
            out.append(_record(name, when, dims, value=float(value)))
    return out


def _record(
    name: str,
    when: str,
    dims: list[dict[str, str]],
    value: float | None = None,
    statistic_values: Mapping[str, float] | None = None,
) -> MetricRecord:
    record: MetricRecord = {"MetricName": name, "Timestamp": when, "Dimensions": dims, "Unit": "None"}
    if statistic_values is not None:
        record["StatisticValues"] = {k: float(v) for k, v in statistic_values.items()}
    else:
        record["Value"] = float(value or 0.0)
    return record


def write_metrics(directory: Path, namespace: str, records: Sequence[MetricRecord]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "cloudwatch_metrics.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({"Namespace": namespace, **record}) + "\n")
    logger.info("wrote %d CloudWatch metric record(s) to %s", len(records), path)
    return path


def publish(namespace: str, records: Sequence[MetricRecord], environ: Mapping[str, str]) -> int:
    """PutMetricData to the local CloudWatch; returns how many records were sent (0 when skipped)."""
    endpoint = environ.get("AWS_ENDPOINT_URL_CLOUDWATCH") or environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        logger.info("CloudWatch publishing skipped: no AWS_ENDPOINT_URL set (metrics are in the output file)")
        return 0
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        logger.info("CloudWatch publishing skipped: boto3 is not installed")
        return 0
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    sent = 0
    try:
        client = boto3.client("cloudwatch", endpoint_url=endpoint, region_name=region)
        for start in range(0, len(records), BATCH):
            batch = [_api_datum(r) for r in records[start : start + BATCH]]
            client.put_metric_data(Namespace=namespace, MetricData=batch)
            sent += len(batch)
    except (BotoCoreError, ClientError) as exc:
        logger.warning("CloudWatch publishing to %s stopped after %d record(s): %s", endpoint, sent, exc)
        return sent
    logger.info("published %d metric(s) to CloudWatch namespace %s at %s", sent, namespace, endpoint)
    return sent


def _api_datum(record: MetricRecord) -> dict[str, Any]:
    datum = dict(record)
    datum["Timestamp"] = datetime.fromisoformat(str(record["Timestamp"]))
    return datum
