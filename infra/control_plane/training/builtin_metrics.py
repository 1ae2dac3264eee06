"""Metric extraction from container log lines (``MetricDefinitions``).

The built-ins' own definitions come from their container manifests
(docs/containers.md#container-manifests-containersnamemanifesttoml).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from infra.container_manifests import builtin_metric_definitions

logger = logging.getLogger(__name__)

__all__ = ["MetricCollector", "builtin_metric_definitions", "escape_control_chars"]


def escape_control_chars(line: str) -> str:
    """The line as SageMaker's log pipeline shows it: control characters rsyslog-escaped (TAB -> ``#011``)."""
    return "".join(f"#{ord(c):03o}" if ord(c) < 32 or ord(c) == 127 else c for c in line)


@lru_cache(maxsize=512)
def _compile(regex: str) -> re.Pattern[str] | None:
    try:
        return re.compile(regex)
    except re.error:
        logger.warning("metric regex does not compile and is ignored: %s", regex)
        return None


class MetricCollector:
    """Keeps the last value and timestamp of each metric seen in the log lines (thread-safe)."""

    def __init__(self, definitions: Sequence[Mapping[str, Any]]) -> None:
        self._definitions = [(str(d["Name"]), _compile(str(d["Regex"]))) for d in definitions]
        self._values: dict[str, tuple[float, datetime]] = {}
        self._lock = threading.Lock()

    def feed(self, line: str, timestamp: datetime) -> None:
        if not self._definitions:
            return
        escaped = escape_control_chars(line)
        for name, pattern in self._definitions:
            value = _match(pattern, escaped) if pattern is not None else None
            if value is None and pattern is not None and escaped != line:
                value = _match(pattern, line)
            if value is not None:
                with self._lock:
                    self._values[name] = (value, timestamp)

    def final(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"MetricName": name, "Value": value, "Timestamp": ts} for name, (value, ts) in self._values.items()]


def _match(pattern: re.Pattern[str], line: str) -> float | None:
    found = pattern.search(line)
    if found is None or not found.groups() or found.group(1) is None:
        return None
    # With #011 escaping a built-in ``(\S+)`` can run on into the next metric: read the leading number.
    number = _LEADING_FLOAT.match(found.group(1))
    return float(number.group(0)) if number else None


_LEADING_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:inf|nan)", re.IGNORECASE)
