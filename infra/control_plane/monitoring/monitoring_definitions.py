"""Monitoring job definitions: the four Create/Describe/List/Delete<Type>JobDefinition families, and the one
normalised view (:class:`MonitoringJob`) an execution runs, built from a named definition or from a schedule's inline
``MonitoringJobDefinition``.

Data quality and model quality definitions are run by the analyzer; model bias and model explainability
definitions by the Clarify container (``monitoring_clarify*.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from infra.control_plane.core.api_shapes import ClusterConfig, NetworkConfig, StoppingCondition, given, parse_request
from infra.control_plane.core.errors import ResourceInUse, ResourceNotFound, ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import arn_for, tags_from, utcnow
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.monitoring.monitoring_api_requests import (
    DEFAULT_MONITORING_MAX_RUNTIME_SECONDS,
    BaselineConfig,
    BatchTransformInput,
    CreateDataQualityJobDefinitionRequest,
    CreateModelBiasJobDefinitionRequest,
    CreateModelExplainabilityJobDefinitionRequest,
    CreateModelQualityJobDefinitionRequest,
    EndpointInput,
    GroundTruthJobInput,
    InlineJobDefinition,
    JobDefinitionRequest,
    MonitoringApp,
    MonitoringJobInput,
    MonitoringOutput,
    MonitoringS3Output,
)

__all__ = ["JobDefinition", "MonitoringJob", "MonitoringJobDefinitions", "MonitoringType", "job_from_inline"]

PROCESSING_ROOT = PurePosixPath("/opt/ml/processing")


class MonitoringType(str, enum.Enum):
    DATA_QUALITY = "DataQuality"
    MODEL_QUALITY = "ModelQuality"
    MODEL_BIAS = "ModelBias"
    MODEL_EXPLAINABILITY = "ModelExplainability"

    @property
    def arn_kind(self) -> str:
        return {
            MonitoringType.DATA_QUALITY: "data-quality-job-definition",
            MonitoringType.MODEL_QUALITY: "model-quality-job-definition",
            MonitoringType.MODEL_BIAS: "model-bias-job-definition",
            MonitoringType.MODEL_EXPLAINABILITY: "model-explainability-job-definition",
        }[self]


@dataclass(frozen=True)
class MonitoringJob:
    """What one execution needs, whatever form the schedule's job definition took."""

    monitoring_type: MonitoringType
    definition_name: str | None
    baseline: BaselineConfig
    app: MonitoringApp
    environment: Mapping[str, str]
    endpoint_input: EndpointInput | None
    batch_input: BatchTransformInput | None
    ground_truth_uri: str | None
    output: MonitoringS3Output  # MonitoringOutputs[0].S3Output
    output_kms_key: str | None
    cluster: ClusterConfig
    stopping: StoppingCondition
    network: NetworkConfig | None  # None when not given (or given empty)
    role: str

    @property
    def endpoint_name(self) -> str | None:
        return self.endpoint_input.endpoint_name if self.endpoint_input else None


@dataclass
class JobDefinition:
    monitoring_type: MonitoringType
    name: str
    arn: str
    request: JobDefinitionRequest  # what executions run
    params: Mapping[str, Any]  # the validated request as sent: echoed by Describe, read by nothing else
    creation_time: datetime = field(default_factory=utcnow)

    @property
    def endpoint_name(self) -> str | None:
        endpoint = self.request.parts.job_input.endpoint_input
        return endpoint.endpoint_name if endpoint else None

    def to_api(self) -> dict[str, Any]:
        body = {key: value for key, value in self.params.items() if key not in ("Tags", "JobDefinitionName")}
        body.update(JobDefinitionName=self.name, JobDefinitionArn=self.arn, CreationTime=self.creation_time)
        return body

    def summary(self) -> dict[str, Any]:
        return {
            "MonitoringJobDefinitionName": self.name,
            "MonitoringJobDefinitionArn": self.arn,
            "CreationTime": self.creation_time,
            "EndpointName": self.endpoint_name,
        }

    def job(self) -> MonitoringJob:
        request = self.request
        parts = request.parts
        output_config = parts.output_config
        return MonitoringJob(
            monitoring_type=self.monitoring_type,
            definition_name=self.name,
            baseline=parts.baseline or BaselineConfig(),
            app=parts.app_specification.app(),
            environment=dict(parts.app_specification.environment),
            endpoint_input=parts.job_input.endpoint_input,
            batch_input=parts.job_input.batch_transform_input,
            ground_truth_uri=parts.job_input.ground_truth_uri,
            output=output_config.monitoring_outputs[0].s3_output,
            output_kms_key=output_config.kms_key_id,
            cluster=request.job_resources.cluster_config,
            stopping=_stopping(request.stopping_condition),
            network=request.network_config if given(request.network_config) else None,
            role=request.role_arn,
        )


def job_from_inline(definition: InlineJobDefinition) -> MonitoringJob:
    """The schedule's inline ``MonitoringJobDefinition`` (always data quality)."""
    inputs = definition.monitoring_inputs
    if len(inputs) != 1:
        raise ValidationException("MonitoringJobDefinition.MonitoringInputs must hold exactly one input.")
    endpoint_input, batch_input = _one_input(inputs[0], "MonitoringInputs[0]")
    outputs = definition.monitoring_output_config.monitoring_outputs
    _check_outputs(outputs)
    return MonitoringJob(
        monitoring_type=MonitoringType.DATA_QUALITY,
        definition_name=None,
        baseline=definition.baseline_config or BaselineConfig(),
        app=definition.monitoring_app_specification.app(),
        environment=dict(definition.environment),
        endpoint_input=endpoint_input,
        batch_input=batch_input,
        ground_truth_uri=None,
        output=outputs[0].s3_output,
        output_kms_key=definition.monitoring_output_config.kms_key_id,
        cluster=definition.monitoring_resources.cluster_config,
        stopping=_stopping(definition.stopping_condition),
        network=definition.network_config if given(definition.network_config) else None,
        role=definition.role_arn,
    )


def _stopping(sent: StoppingCondition | None) -> StoppingCondition:
    return sent or StoppingCondition(max_runtime_in_seconds=DEFAULT_MONITORING_MAX_RUNTIME_SECONDS)


def _one_input(job_input: MonitoringJobInput, where: str) -> tuple[EndpointInput | None, BatchTransformInput | None]:
    endpoint_input, batch_input = job_input.endpoint_input, job_input.batch_transform_input
    if endpoint_input is not None and batch_input is None:
        local_path = endpoint_input.local_path
    elif batch_input is not None and endpoint_input is None:
        local_path = batch_input.local_path
    else:
        raise ValidationException(f"{where} must have exactly one of EndpointInput or BatchTransformInput.")
    _check_local_path(local_path, f"{where}.LocalPath")
    return endpoint_input, batch_input


def _check_outputs(outputs: Sequence[MonitoringOutput]) -> None:
    if len(outputs) != 1:
        raise ValidationException("MonitoringOutputs must hold exactly one output.")
    _check_local_path(outputs[0].s3_output.local_path, "MonitoringOutputs[0].S3Output.LocalPath")


def _check_local_path(path: str, where: str) -> None:
    pure = PurePosixPath(path)
    if not pure.is_relative_to(PROCESSING_ROOT) or pure == PROCESSING_ROOT or ".." in pure.parts:
        raise ValidationException(
            f"{where} {path} is invalid: it must be a path below {PROCESSING_ROOT}/ without '..'."
        )


_REQUESTS: dict[MonitoringType, type[JobDefinitionRequest]] = {
    MonitoringType.DATA_QUALITY: CreateDataQualityJobDefinitionRequest,
    MonitoringType.MODEL_QUALITY: CreateModelQualityJobDefinitionRequest,
    MonitoringType.MODEL_BIAS: CreateModelBiasJobDefinitionRequest,
    MonitoringType.MODEL_EXPLAINABILITY: CreateModelExplainabilityJobDefinitionRequest,
}
_LIST_SPEC: ListSpec[JobDefinition] = ListSpec(name=lambda d: d.name, creation_time=lambda d: d.creation_time)


class MonitoringJobDefinitions:
    """Handlers for the job-definition operations of one account/region (four types, one store each)."""

    def __init__(self, account_id: str, region: str, baselining_job_exists: Callable[[str], bool]) -> None:
        self._account_id = account_id
        self._region = region
        self._baselining_job_exists = baselining_job_exists
        self.stores: dict[MonitoringType, Store[JobDefinition]] = {
            kind: Store(kind.arn_kind, _not_found, JobDefinition) for kind in MonitoringType
        }
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("monitoring-job-definition-tags", list)
        # Set by the schedules service: which schedules use a definition (a used one cannot be deleted).
        self.users: Callable[[MonitoringType, str], list[str]] = lambda kind, name: []

    def get(self, kind: MonitoringType, name: str) -> JobDefinition:
        return self.stores[kind].get_or_raise(name)

    # -- generic operations ------------------------------------------------------------------------------------

    def _create(self, kind: MonitoringType, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["JobDefinitionName"])
        request = parse_request(_REQUESTS[kind], params)
        parts = request.parts
        _one_input(parts.job_input, f"{kind.value}JobInput")
        _check_outputs(parts.output_config.monitoring_outputs)
        if isinstance(parts.job_input, GroundTruthJobInput) and not given(parts.job_input.ground_truth_s3_input):
            raise ValidationException(f"{kind.value}JobInput.GroundTruthS3Input is required.")
        baselining_job = parts.baseline.baselining_job_name if parts.baseline else None
        if baselining_job and not self._baselining_job_exists(baselining_job):
            raise ValidationException(f"Could not find baselining job {baselining_job} (a processing job).")
        arn = arn_for(kind.arn_kind, name, self._account_id, self._region)
        definition = JobDefinition(kind, name, arn, request, dict(params))
        self.stores[kind].add(name, definition, _already_exists(kind))
        self.tags[arn] = tags_from(params)
        return {"JobDefinitionArn": arn}

    def _describe(self, kind: MonitoringType, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.get(kind, str(params["JobDefinitionName"])).to_api()

    def _list(self, kind: MonitoringType, params: Mapping[str, Any]) -> dict[str, Any]:
        items = self.stores[kind].values()
        endpoint = params.get("EndpointName")
        if endpoint:
            items = [d for d in items if d.endpoint_name == endpoint]
        page, token = paginate(items, params, _LIST_SPEC)
        return {"JobDefinitionSummaries": [d.summary() for d in page], "NextToken": token}

    def _delete(self, kind: MonitoringType, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["JobDefinitionName"])
        definition = self.get(kind, name)
        users = self.users(kind, name)
        if users:
            raise ResourceInUse(
                f"Job definition {name} is used by monitoring schedule(s) {', '.join(sorted(users))}; "
                "delete or update those schedules first."
            )
        self.stores[kind].remove(name)
        self.tags.pop(definition.arn, None)
        return {}

    # -- the API operations ------------------------------------------------------------------------------------

    def create_data_quality_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._create(MonitoringType.DATA_QUALITY, params)

    def describe_data_quality_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._describe(MonitoringType.DATA_QUALITY, params)

    def list_data_quality_job_definitions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._list(MonitoringType.DATA_QUALITY, params)

    def delete_data_quality_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._delete(MonitoringType.DATA_QUALITY, params)

    def create_model_quality_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._create(MonitoringType.MODEL_QUALITY, params)

    def describe_model_quality_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._describe(MonitoringType.MODEL_QUALITY, params)

    def list_model_quality_job_definitions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._list(MonitoringType.MODEL_QUALITY, params)

    def delete_model_quality_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._delete(MonitoringType.MODEL_QUALITY, params)

    def create_model_bias_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._create(MonitoringType.MODEL_BIAS, params)

    def describe_model_bias_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._describe(MonitoringType.MODEL_BIAS, params)

    def list_model_bias_job_definitions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._list(MonitoringType.MODEL_BIAS, params)

    def delete_model_bias_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._delete(MonitoringType.MODEL_BIAS, params)

    def create_model_explainability_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._create(MonitoringType.MODEL_EXPLAINABILITY, params)

    def describe_model_explainability_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._describe(MonitoringType.MODEL_EXPLAINABILITY, params)

    def list_model_explainability_job_definitions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._list(MonitoringType.MODEL_EXPLAINABILITY, params)

    def delete_model_explainability_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._delete(MonitoringType.MODEL_EXPLAINABILITY, params)


def _not_found(name: str) -> ResourceNotFound:
    return ResourceNotFound(f"Could not find job definition {name}.")


def _already_exists(kind: MonitoringType) -> Callable[[str], ResourceInUse]:
    def build(name: str) -> ResourceInUse:
        return ResourceInUse(f"A {kind.value} job definition named {name} already exists.")

    return build
