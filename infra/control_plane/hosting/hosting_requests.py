"""The typed CreateModel and CreateEndpointConfig requests the deployer, transform and monitoring read."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from infra.control_plane.core.api_shapes import ApiShape


class ContainerDefinition(ApiShape):
    image: str | None = None
    model_data_url: str | None = None
    environment: Mapping[str, str] = {}
    container_hostname: str | None = None
    mode: str | None = None


class InferenceExecutionConfig(ApiShape):
    mode: str = "Serial"


class CreateModelRequest(ApiShape):
    model_name: str
    primary_container: ContainerDefinition | None = None
    containers: tuple[ContainerDefinition, ...] = ()
    inference_execution_config: InferenceExecutionConfig | None = None
    execution_role_arn: str | None = None
    enable_network_isolation: bool = False


class ServerlessConfig(ApiShape):
    memory_size_in_mb: int | None = Field(default=None, alias="MemorySizeInMB")
    max_concurrency: int | None = None
    provisioned_concurrency: int | None = None


class ProductionVariant(ApiShape):
    variant_name: str
    model_name: str | None = None
    initial_instance_count: int | None = None
    instance_type: str | None = None
    initial_variant_weight: float = 1.0  # AWS's default
    serverless_config: ServerlessConfig | None = None


class CaptureOption(ApiShape):
    capture_mode: str


class CaptureContentTypeHeader(ApiShape):
    csv_content_types: tuple[str, ...] = ()
    json_content_types: tuple[str, ...] = ()


class DataCaptureConfig(ApiShape):
    destination_s3_uri: str
    enable_capture: bool = True
    initial_sampling_percentage: int = 0
    kms_key_id: str | None = None
    capture_options: tuple[CaptureOption, ...] = ()
    capture_content_type_header: CaptureContentTypeHeader = CaptureContentTypeHeader()


class AsyncNotificationConfig(ApiShape):
    success_topic: str | None = None
    error_topic: str | None = None
    include_inference_response_in: tuple[str, ...] = ()


class AsyncOutputConfig(ApiShape):
    s3_output_path: str | None = None
    s3_failure_path: str | None = None
    kms_key_id: str | None = None
    notification_config: AsyncNotificationConfig | None = None


class AsyncClientConfig(ApiShape):
    max_concurrent_invocations_per_instance: int | None = None


class AsyncInferenceConfig(ApiShape):
    output_config: AsyncOutputConfig
    client_config: AsyncClientConfig = AsyncClientConfig()


class CreateEndpointConfigRequest(ApiShape):
    endpoint_config_name: str
    production_variants: tuple[ProductionVariant, ...] = ()
    data_capture_config: DataCaptureConfig | None = None
    kms_key_id: str | None = None
    async_inference_config: AsyncInferenceConfig | None = None
