"""Typed, frozen request values: the base every Create request is parsed into, and the shapes families share.

A request is parsed once, where its family's service receives the validated params (see
``docs/decisions.md``, "Typed requests"); executors, the deployer, tuning and monitoring read these values, never the
raw dict. Field names are SageMaker's members in snake_case; the aliases are the API's PascalCase names. Members a
value does not model are kept as extras, so :meth:`ApiShape.wire` gives back the request exactly as it was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from pydantic.alias_generators import to_pascal

from infra.control_plane.core.errors import ValidationException

__all__ = [
    "ApiShape",
    "Channel",
    "CheckpointConfig",
    "ClusterConfig",
    "DataSource",
    "MetricDefinition",
    "NetworkConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "S3DataSource",
    "StoppingCondition",
    "given",
    "parse_request",
]

T = TypeVar("T", bound="ApiShape")

DEFAULT_MAX_RUNTIME_SECONDS = 86400  # AWS: "By default, SageMaker sets a limit of 1 day" (StoppingCondition)


class ApiShape(BaseModel):
    """A SageMaker structure: frozen, PascalCase aliases, unmodelled members kept for :meth:`wire`."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_pascal,
        populate_by_name=True,
        extra="allow",
        coerce_numbers_to_str=True,
    )

    def wire(self) -> dict[str, Any]:
        """The members that were sent, under their API names, as JSON values (defaults not filled in)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


def parse_request(shape: type[T], params: Mapping[str, Any]) -> T:
    """Parse validated ``params``; a value the botocore-shape validation let through is never rejected here,
    but a request built inside the stack that does not fit becomes AWS's ``ValidationException``."""
    try:
        return shape.model_validate(dict(params))
    except PydanticValidationError as exc:
        raise ValidationException(f"1 validation error detected: {exc.errors()[0]['msg']}") from exc


def given(value: ApiShape | None) -> bool:
    """Whether a structure was sent with at least one member (an empty ``{}`` counts as not given, as AWS reads it)."""
    return value is not None and bool(value.wire())


class S3DataSource(ApiShape):
    s3_uri: str
    s3_data_type: str = "S3Prefix"
    s3_data_distribution_type: str = "FullyReplicated"  # AWS's default


class DataSource(ApiShape):
    s3_data_source: S3DataSource | None = None


class Channel(ApiShape):
    """A training input channel (AWS ``Channel``); defaults as AWS documents them."""

    channel_name: str
    data_source: DataSource = DataSource()
    content_type: str | None = None
    compression_type: str = "None"
    record_wrapper_type: str = "None"
    input_mode: str = "File"


class ResourceConfig(ApiShape):
    """Training's ``ResourceConfig``; without instance groups AWS requires the type and count (local defaults)."""

    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    volume_size_in_gb: int | None = Field(default=None, alias="VolumeSizeInGB")
    volume_kms_key_id: str | None = None
    keep_alive_period_in_seconds: int | None = None  # managed warm pools (docs/performance.md#warm-pools)


class ClusterConfig(ApiShape):
    """``ProcessingClusterConfig`` and monitoring's ``MonitoringClusterConfig`` (same members)."""

    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    volume_size_in_gb: int | None = Field(default=None, alias="VolumeSizeInGB")
    volume_kms_key_id: str | None = None


class StoppingCondition(ApiShape):
    """``ProcessingStoppingCondition``, ``MonitoringStoppingCondition``; training's adds members (kept as extras)."""

    max_runtime_in_seconds: int = DEFAULT_MAX_RUNTIME_SECONDS


class OutputDataConfig(ApiShape):
    s3_output_path: str
    kms_key_id: str | None = None


class CheckpointConfig(ApiShape):
    s3_uri: str
    local_path: str | None = None


class MetricDefinition(ApiShape):
    name: str
    regex: str


class NetworkConfig(ApiShape):
    enable_network_isolation: bool | None = None
    enable_inter_container_traffic_encryption: bool | None = None
