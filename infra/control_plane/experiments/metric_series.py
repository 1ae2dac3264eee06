"""Metric points of trial components: BatchPutMetrics' rules on the way in, BatchGetMetrics' aggregation out."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infra.control_plane.core.store import DurableMap

# AWS's window for a point's Timestamp (the SDK's Run.log_metric states the same rule).
PAST_LIMIT = timedelta(weeks=2)
FUTURE_LIMIT = timedelta(hours=2)
_PERIOD_SECONDS = {"OneMinute": 60, "FiveMinute": 300, "OneHour": 3600}


@dataclass(frozen=True)
class MetricPoint:
    timestamp: float  # epoch seconds
    step: int | None
    value: float


def _std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


_STATS: dict[str, Callable[[Sequence[float]], float]] = {
    "Min": min,
    "Max": max,
    "Avg": lambda values: sum(values) / len(values),
    "Count": lambda values: float(len(values)),
    "StdDev": _std,
    "Last": lambda values: values[-1],
}


def point_error(value: float, when: datetime, now: datetime) -> str | None:
    """Why AWS refuses one RawMetricData (a ``VALIDATION_ERROR``), or None."""
    if not math.isfinite(value):
        return "the value is not a finite number"
    if when < now - PAST_LIMIT or when > now + FUTURE_LIMIT:
        return "the timestamp is not between two weeks before and two hours after now"
    return None


class MetricSeries:
    """Points per (trial component ARN, metric name); job ARNs are aliases of their trial component's ARN."""

    def __init__(self) -> None:
        # Durable under the record journal, one record per trial component (docs/experiments.md#metrics).
        self._points: MutableMapping[str, dict[str, list[MetricPoint]]] = DurableMap(
            "trial-component-metric-series", dict[str, list[MetricPoint]]
        )
        self._aliases: MutableMapping[str, str] = DurableMap("trial-component-metric-aliases", str)
        self._lock = threading.Lock()

    def alias(self, source_arn: str, component_arn: str) -> None:
        with self._lock:
            self._aliases[source_arn.lower()] = component_arn.lower()

    def add(self, component_arn: str, metric: str, points: Sequence[MetricPoint]) -> None:
        key = component_arn.lower()
        with self._lock:
            metrics = self._points.get(key)
            if metrics is None:
                metrics = self._points[key] = {}
            metrics.setdefault(metric, []).extend(points)
            self._points[key]

    def forget(self, component_arn: str) -> None:
        with self._lock:
            self._points.pop(component_arn.lower(), None)

    def points(self, arn: str, metric: str) -> list[MetricPoint] | None:
        key = arn.lower()
        with self._lock:
            key = self._aliases.get(key, key)
            metrics = self._points.get(key)
            if metrics is None:
                return None
            return list(metrics.get(metric, []))

    def query(self, query: Mapping[str, Any]) -> dict[str, Any]:
        """One ``MetricQuery`` answered as a ``MetricQueryResult``."""
        points = self.points(str(query["ResourceArn"]), str(query["MetricName"]))
        if points is None:
            return {"Status": "ValidationError", "Message": f"Resource {query['ResourceArn']} has no metrics."}
        by_step = query["XAxisType"] == "IterationNumber" or query["Period"] == "IterationNumber"
        buckets: dict[int, list[float]] = {}
        for point in sorted(points, key=lambda p: (p.timestamp, p.step or 0)):
            if by_step:
                x = point.step if point.step is not None else 0
            else:
                width = _PERIOD_SECONDS.get(str(query["Period"]), 1)
                x = int(point.timestamp // width * width)
            buckets.setdefault(x, []).append(point.value)
        start, end = query.get("Start"), query.get("End")
        xs = [x for x in sorted(buckets) if (start is None or x >= start) and (end is None or x <= end)]
        stat = _STATS[str(query["MetricStat"])]
        return {"Status": "Complete", "XAxisValues": xs, "MetricValues": [stat(buckets[x]) for x in xs]}
