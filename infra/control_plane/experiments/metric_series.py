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


CHUNK_POINTS = 1_000  # points per stored record: a flush re-encodes only the chunk that grew


class MetricSeries:
    """Points per (trial component ARN, metric name); job ARNs are aliases of their trial component's ARN.

    Durable under the record journal (docs/experiments.md#metrics): a series is stored as chunks of
    ``CHUNK_POINTS`` points, one record each, keyed ``<arn> <metric> <chunk number>``, so logging a point costs the
    next flush one chunk, not the whole series.
    """

    def __init__(self) -> None:
        self._chunks: MutableMapping[str, list[MetricPoint]] = DurableMap(
            "trial-component-metric-chunks", list[MetricPoint]
        )
        self._aliases: MutableMapping[str, str] = DurableMap("trial-component-metric-aliases", str)
        self._index: dict[str, dict[str, list[str]]] = {}  # arn -> metric -> its chunks' keys, in order
        for key in sorted(self._chunks):  # after a restart: the stored chunks (numbers are zero-padded)
            arn, metric, _ = key.rsplit(" ", 2)
            self._index.setdefault(arn, {}).setdefault(metric, []).append(key)
        self._lock = threading.Lock()

    def alias(self, source_arn: str, component_arn: str) -> None:
        with self._lock:
            self._aliases[source_arn.lower()] = component_arn.lower()

    def add(self, component_arn: str, metric: str, points: Sequence[MetricPoint]) -> None:
        arn = component_arn.lower()
        with self._lock:
            keys = self._index.setdefault(arn, {}).setdefault(metric, [])
            pending = list(points)
            while pending:
                if not keys or len(self._chunks[keys[-1]]) >= CHUNK_POINTS:
                    keys.append(f"{arn} {metric} {len(keys):08d}")
                    self._chunks[keys[-1]] = []
                chunk = self._chunks[keys[-1]]
                room = CHUNK_POINTS - len(chunk)
                chunk.extend(pending[:room])
                pending = pending[room:]
                # A lookup after the change marks the chunk changed: the next flush stores it.
                self._chunks[keys[-1]]

    def forget(self, component_arn: str) -> None:
        with self._lock:
            for keys in self._index.pop(component_arn.lower(), {}).values():
                for key in keys:
                    self._chunks.pop(key, None)

    def points(self, arn: str, metric: str) -> list[MetricPoint] | None:
        key = arn.lower()
        with self._lock:
            key = self._aliases.get(key, key)
            metrics = self._index.get(key)
            if metrics is None:
                return None
            return [point for chunk in metrics.get(metric, []) for point in self._chunks[chunk]]

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
