"""Monitoring job definitions: the four Create/Describe/List/Delete<Type>JobDefinition families, and the one
normalised view (:class:`MonitoringJob`) an execution runs, built from a named definition or from a schedule's inline
``MonitoringJobDefinition``.

Data quality and model quality definitions are run by the analyzer; model bias and model explainability
definitions by the Clarify container (``monitoring_clarify*.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from infra.control_plane.core.errors import ResourceInUse, ResourceNotFound, ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import arn_for, tags_from, utcnow
from infra.control_plane.core.store import Store

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
    baseline: Mapping[str, Any]
    app: Mapping[str, Any]
    environment: Mapping[str, str]
    endpoint_input: Mapping[str, Any] | None
    batch_input: Mapping[str, Any] | None
    ground_truth_uri: str | None
    output: Mapping[str, Any]  # MonitoringOutputs[0].S3Output
    output_kms_key: str | None
    cluster: Mapping[str, Any]
    stopping: Mapping[str, Any]
    network: Mapping[str, Any] | None
    role: str

    @property
    def endpoint_name(self) -> str | None:
        return str(self.endpoint_input["EndpointName"]) if self.endpoint_input else None


@dataclass
class JobDefinition:
    monitoring_type: MonitoringType
    name: str
    arn: str
    request: Mapping[str, Any]
    creation_time: datetime = field(default_factory=utcnow)

    def _part(self, suffix: str) -> Mapping[str, Any]:
        value = self.request.get(f"{self.monitoring_type.value}{suffix}")
        return value if isinstance(value, Mapping) else {}

    @property
    def endpoint_name(self) -> str | None:
        endpoint = self._part("JobInput").get("EndpointInput")
        return str(endpoint["EndpointName"]) if endpoint else None

    def to_api(self) -> dict[str, Any]:
        body = {key: value for key, value in self.request.items() if key not in ("Tags", "JobDefinitionName")}
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
        app = dict(self._part("AppSpecification"))
        job_input = self._part("JobInput")
        output_config = self._part("JobOutputConfig")
        ground_truth = job_input.get("GroundTruthS3Input") or {}
        return MonitoringJob(
            monitoring_type=self.monitoring_type,
            definition_name=self.name,
            baseline=dict(self._part("BaselineConfig")),
            app=app,
            environment={str(k): str(v) for k, v in (app.pop("Environment", None) or {}).items()},
            endpoint_input=job_input.get("EndpointInput"),
            batch_input=job_input.get("BatchTransformInput"),
            ground_truth_uri=ground_truth.get("S3Uri"),
            output=output_config["MonitoringOutputs"][0]["S3Output"],
            output_kms_key=output_config.get("KmsKeyId"),
            cluster=self.request["JobResources"]["ClusterConfig"],
            stopping=self.request.get("StoppingCondition") or {},
            network=self.request.get("NetworkConfig"),
            role=str(self.request["RoleArn"]),
        )


def job_from_inline(definition: Mapping[str, Any]) -> MonitoringJob:
    """The schedule's inline ``MonitoringJobDefinition`` (always data quality)."""
    inputs = definition["MonitoringInputs"]
    if len(inputs) != 1:
        raise ValidationException("MonitoringJobDefinition.MonitoringInputs must hold exactly one input.")
    endpoint_input, batch_input = _one_input(inputs[0], "MonitoringInputs[0]")
    outputs = definition["MonitoringOutputConfig"]["MonitoringOutputs"]
    _check_outputs(outputs)
    return MonitoringJob(
        monitoring_type=MonitoringType.DATA_QUALITY,
        definition_name=None,
        baseline=dict(definition.get("BaselineConfig") or {}),
        app=dict(definition["MonitoringAppSpecification"]),
        environment={str(k): str(v) for k, v in (definition.get("Environment") or {}).items()},
        endpoint_input=endpoint_input,
        batch_input=batch_input,
        ground_truth_uri=None,
        output=outputs[0]["S3Output"],
        output_kms_key=definition["MonitoringOutputConfig"].get("KmsKeyId"),
        cluster=definition["MonitoringResources"]["ClusterConfig"],
        stopping=definition.get("StoppingCondition") or {},
        network=definition.get("NetworkConfig"),
        role=str(definition["RoleArn"]),
    )


def _one_input(job_input: Mapping[str, Any], where: str) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    endpoint_input, batch_input = job_input.get("EndpointInput"), job_input.get("BatchTransformInput")
    if (endpoint_input is None) == (batch_input is None):
        raise ValidationException(f"{where} must have exactly one of EndpointInput or BatchTransformInput.")
    chosen = endpoint_input or batch_input or {}
    _check_local_path(str(chosen["LocalPath"]), f"{where}.LocalPath")
    return endpoint_input, batch_input


def _check_outputs(outputs: list[Mapping[str, Any]]) -> None:
    if len(outputs) != 1:
        raise ValidationException("MonitoringOutputs must hold exactly one output.")
    _check_local_path(str(outputs[0]["S3Output"]["LocalPath"]), "MonitoringOutputs[0].S3Output.LocalPath")


def _check_local_path(path: str, where: str) -> None:
    pure = PurePosixPath(path)
    if not pure.is_relative_to(PROCESSING_ROOT) or pure == PROCESSING_ROOT or ".." in pure.parts:
        raise ValidationException(
            f"{where} {path} is invalid: it must be a path below {PROCESSING_ROOT}/ without '..'."
        )


_LIST_SPEC: ListSpec[JobDefinition] = ListSpec(name=lambda d: d.name, creation_time=lambda d: d.creation_time)


class MonitoringJobDefinitions:
    """Handlers for the job-definition operations of one account/region (four types, one store each)."""

    def __init__(self, account_id: str, region: str, baselining_job_exists: Callable[[str], bool]) -> None:
        self._account_id = account_id
        self._region = region
        self._baselining_job_exists = baselining_job_exists
        self.stores: dict[MonitoringType, Store[JobDefinition]] = {
            kind: Store(kind.arn_kind, _not_found) for kind in MonitoringType
        }
        self.tags: dict[str, list[dict[str, str]]] = {}
        # Set by the schedules service: which schedules use a definition (a used one cannot be deleted).
        self.users: Callable[[MonitoringType, str], list[str]] = lambda kind, name: []

    def get(self, kind: MonitoringType, name: str) -> JobDefinition:
        return self.stores[kind].get_or_raise(name)

    # -- generic operations ------------------------------------------------------------------------------------

    def _create(self, kind: MonitoringType, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["JobDefinitionName"])
        job_input = params[f"{kind.value}JobInput"]
        _one_input(job_input, f"{kind.value}JobInput")
        _check_outputs(params[f"{kind.value}JobOutputConfig"]["MonitoringOutputs"])
        if kind in (MonitoringType.MODEL_QUALITY, MonitoringType.MODEL_BIAS) and not job_input.get(
            "GroundTruthS3Input"
        ):
            raise ValidationException(f"{kind.value}JobInput.GroundTruthS3Input is required.")
        baselining_job = (params.get(f"{kind.value}BaselineConfig") or {}).get("BaseliningJobName")
        if baselining_job and not self._baselining_job_exists(str(baselining_job)):
            raise ValidationException(f"Could not find baselining job {baselining_job} (a processing job).")
        arn = arn_for(kind.arn_kind, name, self._account_id, self._region)
        definition = JobDefinition(kind, name, arn, dict(params))
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
