"""Step cache: the latest successful run of the same pipeline step with an equal key, within ``ExpireAfter``."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infra.control_plane.core.errors import ServiceError
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.core.store import DurableMap
from infra.control_plane.pipeline_engine.operations import Operations

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheEntry:
    execution_arn: str
    finished: datetime
    properties: dict[str, Any]
    metadata: dict[str, Any]


class StepCache:
    """Keyed by (pipeline, cache key); never shared across pipelines; failed runs are never recorded.

    Built inside a backend's record binding, the entries are stored with the control plane's records, so a step
    cached before a restart is still a hit after it (docs/local-stack.md#what-persists-where-and-how-to-reset).
    """

    def __init__(self) -> None:
        self._entries: DurableMap[CacheEntry] = DurableMap("pipeline-step-cache", CacheEntry)  # "pipeline\tkey"
        self._lock = threading.Lock()

    def lookup(self, pipeline: str, key: str, expire_after: timedelta | None) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get(f"{pipeline}\t{key}")
        if entry is None or (expire_after is not None and utcnow() - entry.finished > expire_after):
            return None
        return entry

    def record(
        self, pipeline: str, key: str, execution_arn: str, properties: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        with self._lock:
            self._entries[f"{pipeline}\t{key}"] = CacheEntry(execution_arn, utcnow(), properties, metadata)

    def forget(self, pipeline: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k.partition("\t")[0] == pipeline]:
                del self._entries[key]


# Model steps ---------------------------------------------------------------------------------------------------------
# A Model step has no CacheConfig in the SDK, and a new model name each run makes every downstream Transform step miss
# its cache (the model name is part of the Transform key). A model is only a record of references (image, model data
# URI, environment, role), so a Model step whose resolved arguments equal those of the model the same step created
# before reuses that model (after checking it still exists with the same definition) instead of creating a twin.
MODEL_DEFINITION_KEYS = (
    "PrimaryContainer",
    "Containers",
    "InferenceExecutionConfig",
    "ExecutionRoleArn",
    "VpcConfig",
    "EnableNetworkIsolation",
)


class ModelReuse:
    """(step name, hash of the model definition) -> the model name that step created last; one per control plane."""

    def __init__(self) -> None:
        # "step\tdefinition hash" -> [model name, its CreationTime]; stored like the step cache (a Transform step
        # after a Model step still hits its cache after a restart)
        self._models: DurableMap[list[Any]] = DurableMap("pipeline-model-reuse", list)
        self._lock = threading.Lock()

    @staticmethod
    def definition_key(arguments: Mapping[str, Any]) -> str:
        subset = {key: arguments.get(key) for key in MODEL_DEFINITION_KEYS}
        return hashlib.sha256(json.dumps(subset, sort_keys=True, default=str).encode()).hexdigest()

    def reusable(self, operations: Operations, step_name: str, arguments: Mapping[str, Any]) -> dict[str, Any] | None:
        """DescribeModel of the model to reuse, or None (explicit ModelName, none recorded, deleted or replaced).

        Models cannot be updated, so the model recorded for the same step and the same resolved arguments still has
        that definition as long as it exists with the recorded CreationTime."""
        if arguments.get("ModelName"):
            return None
        key = self.definition_key(arguments)
        with self._lock:
            found = self._models.get(f"{step_name}\t{key}")
        if found is None:
            return None
        name, created = found
        try:
            described = operations.call("DescribeModel", {"ModelName": name})
        except ServiceError:
            return None
        if described.get("CreationTime") != created:  # deleted and created again under the same name
            return None
        logger.info("step %s reuses model %s (same definition)", step_name, name)
        return described

    def record(self, step_name: str, arguments: Mapping[str, Any], described: Mapping[str, Any]) -> None:
        """Remember the model a step created from ``arguments`` (``described``: its DescribeModel answer)."""
        with self._lock:
            key = f"{step_name}\t{self.definition_key(arguments)}"
            self._models[key] = [str(described["ModelName"]), described.get("CreationTime")]


_MODEL_REUSE: weakref.WeakKeyDictionary[Operations, ModelReuse] = weakref.WeakKeyDictionary()
_MODEL_REUSE_LOCK = threading.Lock()


def model_reuse(operations: Operations) -> ModelReuse:
    """The model registry of the control plane whose ``Operations`` these are (built with the backend, inside its
    record binding, by :func:`open_model_reuse`; else here, in memory)."""
    with _MODEL_REUSE_LOCK:
        found = _MODEL_REUSE.get(operations)
        if found is None:
            found = _MODEL_REUSE[operations] = ModelReuse()
        return found


def open_model_reuse(operations: Operations) -> ModelReuse:
    """Build the registry of ``operations`` now (the pipeline service does, so its entries are stored)."""
    return model_reuse(operations)
