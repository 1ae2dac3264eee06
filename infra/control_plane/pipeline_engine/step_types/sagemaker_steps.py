"""Step executors: each runs its child resource through the control plane's own operations and tracks it."""

from __future__ import annotations

import logging
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.control_plane.core.errors import ServiceError
from infra.control_plane.pipeline_engine.cache import model_reuse
from infra.control_plane.pipeline_engine.definition import Step, StepType
from infra.control_plane.pipeline_engine.operations import Operations

logger = logging.getLogger(__name__)

REASON_LIMIT = 1300


class StepFailed(Exception):
    """The step failed; ``exception_type`` is the RetryPolicies type it counts as (None: never retried)."""

    def __init__(self, reason: str, exception_type: str | None = None, by_fail_step: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:REASON_LIMIT]
        self.exception_type = exception_type
        self.by_fail_step = by_fail_step


class StepStopped(Exception):
    """The execution was stopped while the step ran; its child job was stopped too."""


@dataclass(frozen=True)
class StepOutcome:
    properties: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class JobKind:
    create: str
    describe: str
    stop: str
    name_key: str
    status_key: str
    arn_key: str
    metadata_key: str
    max_name: int = 63


JOB_KINDS: Mapping[StepType, JobKind] = {
    StepType.PROCESSING: JobKind(
        "CreateProcessingJob",
        "DescribeProcessingJob",
        "StopProcessingJob",
        "ProcessingJobName",
        "ProcessingJobStatus",
        "ProcessingJobArn",
        "ProcessingJob",
    ),
    StepType.TRAINING: JobKind(
        "CreateTrainingJob",
        "DescribeTrainingJob",
        "StopTrainingJob",
        "TrainingJobName",
        "TrainingJobStatus",
        "TrainingJobArn",
        "TrainingJob",
    ),
    StepType.TRANSFORM: JobKind(
        "CreateTransformJob",
        "DescribeTransformJob",
        "StopTransformJob",
        "TransformJobName",
        "TransformJobStatus",
        "TransformJobArn",
        "TransformJob",
    ),
    StepType.TUNING: JobKind(
        "CreateHyperParameterTuningJob",
        "DescribeHyperParameterTuningJob",
        "StopHyperParameterTuningJob",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
        "HyperParameterTuningJobArn",
        "TuningJob",
        max_name=32,
    ),
}
_NAME_CHARS = set(string.ascii_letters + string.digits + "-")
_PREFIX_KEYS: Mapping[StepType, str] = {
    **{kind_type: kind.name_key for kind_type, kind in JOB_KINDS.items()},
    StepType.MODEL: "ModelName",
}


def child_name(step: Step, execution_id: str) -> str:
    """``<prefix>-<execution id>-<random>`` within the child resource's name limit (retries get a fresh name).

    The prefix is the step's name, or the job (or model) name its arguments carry: the SDK keeps it there under
    ``PipelineDefinitionConfig(use_custom_job_prefix=True)`` (docs/pipelines.md#custom-job-name-prefixes).
    """
    limit = JOB_KINDS[step.type].max_name if step.type in JOB_KINDS else 63
    custom = step.arguments.get(_PREFIX_KEYS[step.type]) if step.type in _PREFIX_KEYS else None
    prefix = custom if isinstance(custom, str) and custom.strip() else step.name
    cleaned = "".join(c if c in _NAME_CHARS else "-" for c in prefix).strip("-") or "step"
    suffix = f"-{execution_id}-{secrets.token_hex(3)[:5]}"
    return (cleaned[: limit - len(suffix)] + suffix).lower()  # ARNs lower-case names: keep both the same


@dataclass
class StepContext:
    step: Step
    arguments: dict[str, Any]
    child_name: str
    operations: Operations
    stop: threading.Event
    poll_seconds: float
    on_metadata: Callable[[dict[str, Any]], None]
    step_fields: dict[str, Any] = field(default_factory=dict)  # resolved check-step keys (CheckType, SkipCheck, ...)
    read_s3: Callable[[str], bytes] | None = None
    write_s3: Callable[[str, bytes], None] | None = None


def run_step(ctx: StepContext) -> StepOutcome:
    """Run a job-backed, Model, RegisterModel, EndpointConfig or Endpoint step (not Condition or Fail)."""
    kind = JOB_KINDS.get(ctx.step.type)
    if kind is not None:
        return _run_job(ctx, kind)
    if ctx.step.type is StepType.MODEL:
        return _create_model(ctx)
    if ctx.step.type is StepType.REGISTER_MODEL:
        return _register_model(ctx)
    if ctx.step.type is StepType.ENDPOINT_CONFIG:
        return _create_endpoint_config(ctx)
    if ctx.step.type is StepType.ENDPOINT:
        return _create_or_update_endpoint(ctx)
    raise StepFailed(f"Step {ctx.step.name}: step type {ctx.step.type.value} cannot be executed locally.")


def run_processing(ctx: StepContext) -> StepOutcome:
    """Run ``ctx.arguments`` as a processing job named ``ctx.child_name`` (check steps run theirs this way)."""
    return _run_job(ctx, JOB_KINDS[StepType.PROCESSING])


def _call(ctx: StepContext, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return ctx.operations.call(operation, params)
    except ServiceError as exc:
        raise StepFailed(f"{exc.code}: {exc.message}", _service_fault(exc)) from exc


def _service_fault(exc: ServiceError) -> str | None:
    if exc.status >= 500:
        return "Step.SERVICE_FAULT"
    if exc.code == "ResourceLimitExceeded":
        return "SageMaker.RESOURCE_LIMIT"
    if exc.code in ("ThrottlingException", "Throttling"):
        return "Step.THROTTLING"
    return None


def _job_fault(reason: str) -> str | None:
    # SageMaker's own reasons start "InternalServerError: ..."; locally the processing runner wraps the last stderr
    # line ("AlgorithmError: InternalServerError: ..., exit code: 1"), so the marker may appear anywhere.
    if "InternalServerError" in reason:
        return "SageMaker.JOB_INTERNAL_ERROR"
    if "CapacityError" in reason:
        return "SageMaker.CAPACITY_ERROR"
    return None


def _run_job(ctx: StepContext, kind: JobKind) -> StepOutcome:
    request = {**ctx.arguments, kind.name_key: ctx.child_name}
    name = str(request[kind.name_key])
    created = _call(ctx, kind.create, request)
    metadata = {kind.metadata_key: {"Arn": created.get(kind.arn_key)}}
    ctx.on_metadata(metadata)
    stop_sent = False
    while True:
        described = _call(ctx, kind.describe, {kind.name_key: name})
        status = described.get(kind.status_key)
        if status in ("Completed", "Failed", "Stopped"):
            break
        if ctx.stop.is_set() and not stop_sent:
            stop_sent = True
            _stop_quietly(ctx, kind, name)
        if stop_sent:
            time.sleep(ctx.poll_seconds)
        else:
            ctx.stop.wait(ctx.poll_seconds)
    if status == "Stopped" or stop_sent:
        raise StepStopped(f"{kind.metadata_key} {name} was stopped")
    if status == "Failed":
        reason = str(described.get("FailureReason") or "the job failed")
        raise StepFailed(f"{kind.metadata_key} {name} failed: {reason}", _job_fault(reason))
    if ctx.step.type is StepType.TUNING:
        described.update(_tuning_summaries(ctx, name))
    return StepOutcome(described, metadata)


def _stop_quietly(ctx: StepContext, kind: JobKind, name: str) -> None:
    try:
        ctx.operations.call(kind.stop, {kind.name_key: name})
    except ServiceError as exc:
        logger.info("stopping %s %s: %s", kind.metadata_key, name, exc.message)


def _tuning_summaries(ctx: StepContext, name: str) -> dict[str, Any]:
    """A Tuning step's properties add ``TrainingJobSummaries`` (best first, up to 50)."""
    if not ctx.operations.supports("ListTrainingJobsForHyperParameterTuningJob"):
        return {}
    listed = _call(
        ctx,
        "ListTrainingJobsForHyperParameterTuningJob",
        {
            "HyperParameterTuningJobName": name,
            "SortBy": "FinalObjectiveMetricValue",
            "SortOrder": "Descending",
            "MaxResults": 50,
        },
    )
    return {"TrainingJobSummaries": listed.get("TrainingJobSummaries", [])}


def _create_model(ctx: StepContext) -> StepOutcome:
    reuse = model_reuse(ctx.operations)  # same definition as last time: keep that model (see cache.py)
    previous = reuse.reusable(ctx.operations, ctx.step.name, ctx.arguments)
    if previous is not None:
        return StepOutcome(previous, {"Model": {"Arn": previous.get("ModelArn")}})
    request = {**ctx.arguments, "ModelName": ctx.child_name}
    created = _call(ctx, "CreateModel", request)
    described = _call(ctx, "DescribeModel", {"ModelName": request["ModelName"]})
    reuse.record(ctx.step.name, ctx.arguments, described)
    return StepOutcome(described, {"Model": {"Arn": created.get("ModelArn")}})


def _register_model(ctx: StepContext) -> StepOutcome:
    group = ctx.arguments.get("ModelPackageGroupName")
    if group and not str(group).startswith("arn:"):
        _ensure_group(ctx, str(group))
    created = _call(ctx, "CreateModelPackage", ctx.arguments)
    arn = str(created.get("ModelPackageArn"))
    described = _call(ctx, "DescribeModelPackage", {"ModelPackageName": arn})
    return StepOutcome(described, {"RegisterModel": {"Arn": arn}})


def _ensure_group(ctx: StepContext, group: str) -> None:
    """A RegisterModel step creates its model package group when it does not exist yet (as on AWS)."""
    try:
        ctx.operations.call("DescribeModelPackageGroup", {"ModelPackageGroupName": group})
    except ServiceError:
        _call(ctx, "CreateModelPackageGroup", {"ModelPackageGroupName": group})


def _create_endpoint_config(ctx: StepContext) -> StepOutcome:
    """``CreateEndpointConfig`` with the step's arguments (the step's own name when they carry none)."""
    request = {"EndpointConfigName": ctx.child_name, **ctx.arguments}
    created = _call(ctx, "CreateEndpointConfig", request)
    metadata = {"EndpointConfig": {"Arn": created.get("EndpointConfigArn")}}
    ctx.on_metadata(metadata)
    described = _call(ctx, "DescribeEndpointConfig", {"EndpointConfigName": request["EndpointConfigName"]})
    return StepOutcome(described, metadata)


def _create_or_update_endpoint(ctx: StepContext) -> StepOutcome:
    """``CreateEndpoint``, or ``UpdateEndpoint`` when the endpoint exists (as the SDK's EndpointStep documents), then
    wait for ``InService``; an endpoint ending ``Failed`` fails the step with its reason."""
    name = str(ctx.arguments.get("EndpointName") or "")
    if not name:
        raise StepFailed(f"Step {ctx.step.name}: an Endpoint step needs an EndpointName.")
    try:
        ctx.operations.call("DescribeEndpoint", {"EndpointName": name})
        exists = True
    except ServiceError:
        exists = False
    if exists:
        update = {"EndpointName": name, "EndpointConfigName": ctx.arguments.get("EndpointConfigName")}
        answer = _call(ctx, "UpdateEndpoint", update)
    else:
        answer = _call(ctx, "CreateEndpoint", ctx.arguments)
    metadata = {"Endpoint": {"Arn": answer.get("EndpointArn")}}
    ctx.on_metadata(metadata)
    while True:
        described = _call(ctx, "DescribeEndpoint", {"EndpointName": name})
        status = described.get("EndpointStatus")
        if status in ("InService", "Failed", "OutOfService"):
            break
        if ctx.stop.wait(ctx.poll_seconds):
            raise StepStopped(f"Endpoint {name} is still {status}; the step was stopped (the endpoint is kept)")
    if status != "InService":
        reason = described.get("FailureReason") or f"the endpoint is {status}"
        raise StepFailed(f"Endpoint {name} failed: {reason}")
    return StepOutcome(described, metadata)
