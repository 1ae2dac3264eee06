"""Step-level policies: ``CacheConfig`` (lenient ``ExpireAfter``, per-type cache keys) and ``RetryPolicies``."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from infra.control_plane.pipeline_engine.definition import CHECK_FIELDS, DefinitionError, Step, StepType

CACHE_KEYS: Mapping[StepType, tuple[str, ...]] = {
    StepType.PROCESSING: ("AppSpecification", "Environment", "ProcessingInputs"),
    StepType.TRAINING: (
        "AlgorithmSpecification",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "Environment",
        "HyperParameters",
        "InputDataConfig",
    ),
    StepType.TUNING: ("HyperParameterTuningJobConfig", "TrainingJobDefinition", "TrainingJobDefinitions"),
    StepType.TRANSFORM: ("DataProcessing", "Environment", "ModelName", "TransformInput"),
    StepType.EMR: ("ClusterId", "ClusterConfig", "StepConfig"),
    # docs/pipelines.md#cache-key-attributes: the check config (the job's inputs and environment) and the check-step
    # keys
    StepType.CLARIFY_CHECK: ("AppSpecification", "Environment", "ProcessingInputs", *CHECK_FIELDS),
    StepType.QUALITY_CHECK: ("AppSpecification", "Environment", "ProcessingInputs", *CHECK_FIELDS),
}
EXCEPTION_TYPES = frozenset(
    {
        "Step.SERVICE_FAULT",
        "Step.THROTTLING",
        "SageMaker.JOB_INTERNAL_ERROR",
        "SageMaker.CAPACITY_ERROR",
        "SageMaker.RESOURCE_LIMIT",
    }
)
RETRYABLE_TYPES = frozenset(
    {
        StepType.PROCESSING,
        StepType.TRAINING,
        StepType.TUNING,
        StepType.MODEL,
        StepType.REGISTER_MODEL,
        StepType.TRANSFORM,
        StepType.ENDPOINT_CONFIG,
        StepType.EMR,
    }
)
_UNITS = {"y": 365 * 86400, "m": 30 * 86400, "w": 7 * 86400, "d": 86400}
_TIME_UNITS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """Lenient ISO-8601 duration: ``PT1H``, ``P30D``, ``p30d``, ``P4DT12H``, ``T12H``, ``30d``, ``5y``, ``30dT5h``."""
    raw = text.strip().lower().removeprefix("p")
    date_part, _, time_part = raw.partition("t")
    seconds = _sum_units(date_part, _UNITS, text) + _sum_units(time_part, _TIME_UNITS, text)
    if not date_part and not time_part:
        raise DefinitionError(f"ExpireAfter {text!r} is not an ISO-8601 duration.")
    return timedelta(seconds=seconds)


def _sum_units(part: str, units: Mapping[str, int], original: str) -> float:
    if not part:
        return 0.0
    pieces = re.findall(r"(\d+(?:\.\d+)?)([a-z])", part)
    if "".join(n + u for n, u in pieces) != part or any(u not in units for _, u in pieces):
        raise DefinitionError(f"ExpireAfter {original!r} is not an ISO-8601 duration.")
    return sum(float(n) * units[u] for n, u in pieces)


@dataclass(frozen=True)
class CachePolicy:
    expire_after: timedelta | None

    @classmethod
    def of(cls, step: Step) -> CachePolicy | None:
        config = step.raw.get("CacheConfig")
        if not isinstance(config, Mapping) or not config.get("Enabled"):
            return None
        expire = config.get("ExpireAfter")
        try:
            return cls(parse_duration(str(expire)) if expire else None)
        except DefinitionError as exc:
            raise DefinitionError(f"Step {step.name}: CacheConfig.{exc}") from exc


def cache_key(step: Step, arguments: Mapping[str, Any]) -> str | None:
    """The hash of the resolved key attributes of a cacheable step type (None: the type is not cacheable)."""
    keys = CACHE_KEYS.get(step.type)
    if keys is None:
        return None
    subset = {key: arguments.get(key) for key in keys}
    text = json.dumps([step.name, step.type.value, subset], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RetryPolicy:
    exception_types: frozenset[str]
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_attempts: int | None = 5
    expire_after_minutes: int | None = None

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return float(self.interval_seconds * self.backoff_rate ** (attempt - 1))


def retry_policies(step: Step) -> tuple[RetryPolicy, ...]:
    raw = step.raw.get("RetryPolicies") or []
    if raw and step.type not in RETRYABLE_TYPES:
        raise DefinitionError(f"Step {step.name}: RetryPolicies are not supported on {step.type.value} steps.")
    return tuple(_retry_policy(step, item) for item in raw)


def _retry_policy(step: Step, item: Mapping[str, Any]) -> RetryPolicy:
    kinds = item.get("ExceptionType") or []
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    unknown = [k for k in kinds if k not in EXCEPTION_TYPES]
    if unknown or not kinds:
        raise DefinitionError(
            f"Step {step.name}: RetryPolicies.ExceptionType {unknown or kinds} must be from {sorted(EXCEPTION_TYPES)}."
        )
    if "MaxAttempts" in item and "ExpireAfterMin" in item:
        raise DefinitionError(f"Step {step.name}: a retry policy takes MaxAttempts or ExpireAfterMin, not both.")
    if step.type is StepType.TUNING and "SageMaker.JOB_INTERNAL_ERROR" in kinds:
        raise DefinitionError(f"Step {step.name}: Tuning steps do not retry SageMaker.JOB_INTERNAL_ERROR.")
    expire = item.get("ExpireAfterMin")
    return RetryPolicy(
        exception_types=frozenset(kinds),
        interval_seconds=float(item.get("IntervalSeconds", 1)),
        backoff_rate=float(item.get("BackoffRate", 2.0)),
        max_attempts=None if expire is not None else int(item.get("MaxAttempts", 5)),
        expire_after_minutes=int(expire) if expire is not None else None,
    )
