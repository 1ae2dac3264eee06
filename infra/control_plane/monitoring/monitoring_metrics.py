"""CloudWatch metrics of monitoring executions, stored in moto's CloudWatch in process.

The built-in analyzer publishes its own metrics (processing jobs get the stack as ``AWS_ENDPOINT_URL``); the control
plane publishes the Clarify monitors' records and forwards, for any other image, the BYOC records file
``/opt/ml/output/metrics/cloudwatch/*.jsonl`` the job left behind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from infra.control_plane.core.aws_services import put_metric_records

logger = logging.getLogger(__name__)

__all__ = ["METRICS_FILE_DIR", "forward_metrics_file", "publish_metrics"]

METRICS_FILE_DIR = PurePosixPath("output/metrics/cloudwatch")


def publish_metrics(account_id: str, region: str, records: Sequence[Mapping[str, Any]], endpoint: str | None) -> int:
    """PutMetricData into moto's CloudWatch (in process); returns how many records were stored."""
    default_namespace = (
        "aws/sagemaker/Endpoints/data-metrics" if endpoint else "aws/sagemaker/ModelMonitoring/data-metrics"
    )
    return put_metric_records(account_id, region, records, default_namespace)


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
