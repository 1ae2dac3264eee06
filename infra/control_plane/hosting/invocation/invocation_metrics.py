"""An endpoint's invocation metrics in CloudWatch (namespace ``AWS/SageMaker``, as on AWS).

InvokeEndpoint records each call (variant, outcome, the model's latency and the whole call's) in memory; a background
thread publishes, every ``period_seconds``, one data point per endpoint and variant for each metric AWS publishes
per minute: ``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors``, ``InvocationsPerInstance`` (counts)
and ``ModelLatency`` / ``OverheadLatency`` (microseconds, the period's mean), with the dimensions ``EndpointName``
and ``VariantName``. Recording is a dictionary update under a lock: nothing is published on the request's path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.control_plane.core.resource_helpers import utcnow

logger = logging.getLogger(__name__)

__all__ = ["NAMESPACE", "InvocationMetrics"]

NAMESPACE = "AWS/SageMaker"

Publish = Callable[[Sequence[Mapping[str, Any]]], int]


@dataclass
class _Tally:
    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    model_us: float = 0.0
    overhead_us: float = 0.0
    timed: int = 0
    instances: int = 1


class InvocationMetrics:
    """Per (endpoint, variant) tallies, published as CloudWatch data points once per period."""

    def __init__(self, publish: Publish, period_seconds: float) -> None:
        self._publish = publish
        self._period = period_seconds
        self._lock = threading.Lock()
        self._tallies: dict[tuple[str, str], _Tally] = {}
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def record(
        self,
        endpoint: str,
        variant: str,
        status: int,
        model_seconds: float | None,
        total_seconds: float,
        instances: int,
    ) -> None:
        with self._lock:
            tally = self._tallies.get((endpoint, variant))
            if tally is None:
                tally = self._tallies[endpoint, variant] = _Tally()
            tally.invocations += 1
            tally.instances = max(1, instances)
            if 400 <= status < 500:
                tally.errors_4xx += 1
            elif status >= 500:
                tally.errors_5xx += 1
            if model_seconds is not None:
                tally.timed += 1
                tally.model_us += model_seconds * 1e6
                tally.overhead_us += max(0.0, total_seconds - model_seconds) * 1e6
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(target=self._loop, name="sagestack-endpoint-metrics", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.wait(self._period):
            self.flush()

    def flush(self) -> int:
        """Publish what was recorded since the last flush; returns the number of data points."""
        with self._lock:
            tallies, self._tallies = self._tallies, {}
        now = utcnow()
        records = [record for key, tally in tallies.items() for record in _records(key[0], key[1], tally)]
        for record in records:
            record["Timestamp"] = now
        return self._publish(records) if records else 0

    def close(self) -> None:
        self._stopped.set()
        self.flush()


def _records(endpoint: str, variant: str, tally: _Tally) -> list[dict[str, Any]]:
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    counts = {
        "Invocations": tally.invocations,
        "Invocation4XXErrors": tally.errors_4xx,
        "Invocation5XXErrors": tally.errors_5xx,
        "InvocationsPerInstance": tally.invocations / tally.instances,
    }
    records = [
        {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": "None"}
        for name, value in counts.items()
    ]
    if tally.timed:
        for name, total in (("ModelLatency", tally.model_us), ("OverheadLatency", tally.overhead_us)):
            records.append(
                {
                    "Namespace": NAMESPACE,
                    "MetricName": name,
                    "Dimensions": dimensions,
                    "Value": total / tally.timed,
                    "Unit": "Microseconds",
                }
            )
    return records
