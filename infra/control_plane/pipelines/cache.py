"""Step cache: the latest successful run of the same pipeline step with an equal key, within ``ExpireAfter``."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infra.control_plane.sagemaker.common import utcnow


@dataclass(frozen=True)
class CacheEntry:
    execution_arn: str
    finished: datetime
    properties: dict[str, Any]
    metadata: dict[str, Any]


class StepCache:
    """Keyed by (pipeline, cache key); never shared across pipelines; failed runs are never recorded."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], CacheEntry] = {}
        self._lock = threading.Lock()

    def lookup(self, pipeline: str, key: str, expire_after: timedelta | None) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get((pipeline, key))
        if entry is None or (expire_after is not None and utcnow() - entry.finished > expire_after):
            return None
        return entry

    def record(
        self, pipeline: str, key: str, execution_arn: str, properties: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        with self._lock:
            self._entries[(pipeline, key)] = CacheEntry(execution_arn, utcnow(), properties, metadata)

    def forget(self, pipeline: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == pipeline]:
                del self._entries[key]
