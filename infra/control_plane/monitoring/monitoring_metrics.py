"""CloudWatch metrics of monitoring executions, stored in moto's CloudWatch in process.

The built-in analyzer publishes its own metrics (processing jobs get the stack as ``AWS_ENDPOINT_URL``); the control
plane publishes the Clarify monitors' records and forwards, for any other image, the BYOC records file
``/opt/ml/output/metrics/cloudwatch/*.jsonl`` the job left behind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from moto.backends import get_backend

logger = logging.getLogger(__name__)

__all__ = ["METRICS_FILE_DIR", "forward_metrics_file", "publish_metrics"]

METRICS_FILE_DIR = PurePosixPath("output/metrics/cloudwatch")
_METRIC_BATCH = 20


def publish_metrics(account_id: str, region: str, records: Sequence[Mapping[str, Any]], endpoint: str | None) -> int:
    """PutMetricData into moto's CloudWatch (in process); returns how many records were stored."""
    default_namespace = (
        "aws/sagemaker/Endpoints/data-metrics" if endpoint else "aws/sagemaker/ModelMonitoring/data-metrics"
    )
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        datum = {
            key: record[key]
            for key in ("MetricName", "Dimensions", "Value", "StatisticValues", "Unit")
            if key in record
        }
        if "MetricName" not in datum:
            continue
        datum["Timestamp"] = _naive_utc(record.get("Timestamp"))
        by_namespace.setdefault(str(record.get("Namespace") or default_namespace), []).append(datum)
    stored = 0
    try:
        backend = get_backend("cloudwatch")[account_id][region]
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), _METRIC_BATCH):
                backend.put_metric_data(namespace, data[start : start + _METRIC_BATCH])
                stored += len(data[start : start + _METRIC_BATCH])
    except Exception:  # metrics never fail an execution
        logger.exception("publishing monitoring metrics to CloudWatch stopped after %d record(s)", stored)
    return stored


def forward_metrics_file(host_dir: Path, account_id: str, region: str, endpoint: str | None) -> int:
    """Publish the records of ``<host_dir>/output/metrics/cloudwatch/*.jsonl`` (malformed lines skipped)."""
    directory = host_dir / METRICS_FILE_DIR
    records = []
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                logger.warning("skipping a malformed CloudWatch metric record in %s", path)
    return publish_metrics(account_id, region, records, endpoint) if records else 0


def _naive_utc(value: Any) -> datetime:
    """moto's CloudWatch compares naive UTC datetimes."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else datetime.now(UTC)
    except ValueError:
        moment = datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
