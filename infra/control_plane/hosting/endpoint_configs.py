"""Endpoint configurations: Create/Describe/List/Delete."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.control_plane.core.api_shapes import parse_request
from infra.control_plane.core.errors import ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.quotas import QuotaLedger
from infra.control_plane.core.resource_helpers import arn_for, get_or_raise, tags_from, utcnow
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.hosting.hosting_requests import CreateEndpointConfigRequest, ProductionVariant
from infra.control_plane.hosting.models import Models
from infra.control_plane.hosting.serverless import check_serverless_variant

_ECHOED = (
    "ProductionVariants",
    "DataCaptureConfig",
    "KmsKeyId",
    "AsyncInferenceConfig",
    "ExplainerConfig",
    "ShadowProductionVariants",
    "ExecutionRoleArn",
    "VpcConfig",
    "EnableNetworkIsolation",
)


@dataclass
class EndpointConfig:
    name: str
    arn: str
    request: CreateEndpointConfigRequest  # what the deployer and monitoring read
    params: Mapping[str, Any]  # the validated request as sent: echoed by Describe, read by nothing else
    creation_time: datetime = field(default_factory=utcnow)

    @property
    def variants(self) -> tuple[ProductionVariant, ...]:
        return self.request.production_variants

    def to_api(self) -> dict[str, Any]:
        body = {key: self.params.get(key) for key in _ECHOED}
        body["ProductionVariants"] = [_with_defaults(v) for v in self.params.get("ProductionVariants") or []]
        body.update(EndpointConfigName=self.name, EndpointConfigArn=self.arn, CreationTime=self.creation_time)
        return body

    def summary(self) -> dict[str, Any]:
        return {
            "EndpointConfigName": self.name,
            "EndpointConfigArn": self.arn,
            "CreationTime": self.creation_time,
        }


def instance_count(variant: ProductionVariant) -> int:
    """The serving containers a variant starts (a serverless variant runs one)."""
    return variant.initial_instance_count or 1


def _with_defaults(variant: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(variant)
    out.setdefault("InitialVariantWeight", 1.0)
    return out


def check_async_config(request: CreateEndpointConfigRequest) -> None:
    """AsyncInferenceConfig (docs/deploy.md#asynchronous-inference): an output path, and instance-backed variants."""
    config = request.async_inference_config
    if config is None:
        return
    if not config.output_config.s3_output_path:
        raise ValidationException("AsyncInferenceConfig.OutputConfig.S3OutputPath is required.")
    if any(v.serverless_config is not None for v in request.production_variants):
        raise ValidationException("AsyncInferenceConfig is not supported for variants with ServerlessConfig.")


_LIST_SPEC: ListSpec[EndpointConfig] = ListSpec(name=lambda c: c.name, creation_time=lambda c: c.creation_time)


class EndpointConfigs:
    def __init__(self, account_id: str, region: str, models: Models, quotas: QuotaLedger | None = None) -> None:
        self._account_id = account_id
        self._region = region
        self._models = models
        self._quotas = quotas or QuotaLedger()
        self.store: Store[EndpointConfig] = Store(
            "endpoint-config",
            lambda name: ValidationException(f'Could not find endpoint configuration "{name}".'),
            EndpointConfig,
        )
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("endpoint-config-tags", list)

    def arn(self, name: str) -> str:
        return arn_for("endpoint-config", name, self._account_id, self._region)

    def create_endpoint_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["EndpointConfigName"])
        request = parse_request(CreateEndpointConfigRequest, params)
        self._check_variants(request.production_variants)
        check_async_config(request)
        config = EndpointConfig(name=name, arn=self.arn(name), request=request, params=dict(params))
        self.store.add(
            name,
            config,
            lambda n: ValidationException(f'Cannot create already existing endpoint configuration "{self.arn(n)}".'),
        )
        self.tags[config.arn] = tags_from(params)
        return {"EndpointConfigArn": config.arn}

    def _check_variants(self, variants: tuple[ProductionVariant, ...]) -> None:
        names = [v.variant_name for v in variants]
        if len(names) != len(set(names)):
            raise ValidationException("Variant names must be unique within a ProductionVariants list.")
        for variant in variants:
            if variant.model_name:
                get_or_raise(self._models.store, variant.model_name)
            check_serverless_variant(variant)
            if variant.serverless_config is None and not variant.initial_instance_count:
                raise ValidationException(
                    f"InitialInstanceCount is required for variant {variant.variant_name} without ServerlessConfig."
                )
            self._quotas.check_instance_count("endpoint variant", instance_count(variant))

    def describe_endpoint_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return get_or_raise(self.store, str(params["EndpointConfigName"])).to_api()

    def list_endpoint_configs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        page, token = paginate(self.store.values(), params, _LIST_SPEC)
        return {"EndpointConfigs": [c.summary() for c in page], "NextToken": token}

    def delete_endpoint_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self.store.remove(str(params["EndpointConfigName"]))
        return {}
