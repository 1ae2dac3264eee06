"""PutMetricData into moto's CloudWatch, in process: the metrics the stack itself publishes (monitoring executions,
endpoint invocations)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from moto.backends import get_backend

logger = logging.getLogger(__name__)

__all__ = ["put_metric_records"]

_METRIC_BATCH = 20
_DATUM_KEYS = ("MetricName", "Dimensions", "Value", "StatisticValues", "Unit")


def put_metric_records(
    account_id: str, region: str, records: Sequence[Mapping[str, Any]], default_namespace: str
) -> int:
    """Store ``records`` (PutMetricData data points, each with an optional ``Namespace`` and ``Timestamp``); returns
    how many were stored. Records without a ``MetricName`` are skipped; a failure is logged, never raised."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        datum = {key: record[key] for key in _DATUM_KEYS if key in record}
        if "MetricName" not in datum:
            continue
        datum["Timestamp"] = naive_utc(record.get("Timestamp"))
        by_namespace.setdefault(str(record.get("Namespace") or default_namespace), []).append(datum)
    stored = 0
    try:
        backend = get_backend("cloudwatch")[account_id][region]
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), _METRIC_BATCH):
                backend.put_metric_data(namespace, data[start : start + _METRIC_BATCH])
                stored += len(data[start : start + _METRIC_BATCH])
    except Exception:  # metrics never fail what publishes them
        logger.exception("publishing CloudWatch metrics stopped after %d record(s)", stored)
    return stored


def naive_utc(value: Any) -> datetime:
    """moto's CloudWatch compares naive UTC datetimes."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else datetime.now(UTC)
        except ValueError:
            moment = datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
