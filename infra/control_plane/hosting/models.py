"""Models: Create/Describe/List/Delete."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.control_plane.core.api_shapes import parse_request
from infra.control_plane.core.errors import ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import arn_for, get_or_raise, tags_from, utcnow
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.hosting.hosting_requests import ContainerDefinition, CreateModelRequest


@dataclass
class Model:
    name: str
    arn: str
    request: CreateModelRequest  # what the deployer and transform run
    params: Mapping[str, Any]  # the validated request as sent: echoed by Describe, read by nothing else
    creation_time: datetime = field(default_factory=utcnow)

    @property
    def containers(self) -> list[ContainerDefinition]:
        primary = self.request.primary_container
        return [primary] if primary is not None else list(self.request.containers)

    @property
    def direct(self) -> bool:
        """``InferenceExecutionConfig.Mode`` Direct: a request goes to the one container it names, not in series."""
        config = self.request.inference_execution_config
        return config is not None and config.mode == "Direct"

    def to_api(self) -> dict[str, Any]:
        params = self.params
        return {
            "ModelName": self.name,
            "ModelArn": self.arn,
            "PrimaryContainer": params.get("PrimaryContainer"),
            "Containers": params.get("Containers"),
            "InferenceExecutionConfig": params.get("InferenceExecutionConfig"),
            "ExecutionRoleArn": params.get("ExecutionRoleArn"),
            "VpcConfig": params.get("VpcConfig"),
            "EnableNetworkIsolation": bool(params.get("EnableNetworkIsolation", False)),
            "CreationTime": self.creation_time,
        }

    def summary(self) -> dict[str, Any]:
        return {"ModelName": self.name, "ModelArn": self.arn, "CreationTime": self.creation_time}


def _check_containers(containers: list[ContainerDefinition]) -> None:
    """Multi-model containers (docs/deploy.md#multi-model-endpoints): one per model, with a ModelDataUrl prefix."""
    modes = [c.mode for c in containers]
    if "MultiModel" in modes and len(containers) > 1:
        raise ValidationException("Mode MultiModel is not supported for a model with several Containers.")
    for container in containers:
        if container.mode == "MultiModel" and not container.model_data_url:
            raise ValidationException("ModelDataUrl (the S3 prefix of the models) is required when Mode is MultiModel.")
    hostnames = [c.container_hostname for c in containers if c.container_hostname]
    if len(hostnames) != len(set(hostnames)):
        raise ValidationException("ContainerHostname must be unique among the Containers of a model.")


_LIST_SPEC: ListSpec[Model] = ListSpec(name=lambda m: m.name, creation_time=lambda m: m.creation_time)


class Models:
    def __init__(self, account_id: str, region: str) -> None:
        self._account_id = account_id
        self._region = region
        self.store: Store[Model] = Store(
            "model", lambda name: ValidationException(f'Could not find model "{self.arn(name)}".'), Model
        )
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("model-tags", list)

    def arn(self, name: str) -> str:
        return arn_for("model", name, self._account_id, self._region)

    def create_model(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["ModelName"])
        if not params.get("PrimaryContainer") and not params.get("Containers"):
            raise ValidationException("Either PrimaryContainer or Containers must be specified.")
        model = Model(
            name=name, arn=self.arn(name), request=parse_request(CreateModelRequest, params), params=dict(params)
        )
        _check_containers(model.containers)
        self.store.add(
            name,
            model,
            lambda n: ValidationException(f'Cannot create already existing model "{self.arn(n)}".'),
        )
        self.tags[model.arn] = tags_from(params)
        return {"ModelArn": model.arn}

    def describe_model(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return get_or_raise(self.store, str(params["ModelName"])).to_api()

    def list_models(self, params: Mapping[str, Any]) -> dict[str, Any]:
        page, token = paginate(self.store.values(), params, _LIST_SPEC)
        return {"Models": [m.summary() for m in page], "NextToken": token}

    def delete_model(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self.store.remove(str(params["ModelName"]))
        return {}
