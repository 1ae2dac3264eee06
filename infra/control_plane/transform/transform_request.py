"""The typed CreateTransformJob request the transform executor runs (parsed once by ``TransformJobs``)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from infra.control_plane.core.api_shapes import ApiShape


class TransformS3DataSource(ApiShape):
    s3_uri: str
    s3_data_type: str = "S3Prefix"


class TransformDataSource(ApiShape):
    s3_data_source: TransformS3DataSource | None = None


class TransformInput(ApiShape):
    data_source: TransformDataSource
    content_type: str | None = None
    compression_type: str = "None"  # AWS's default
    split_type: str = "None"  # AWS's default


class TransformOutput(ApiShape):
    s3_output_path: str
    accept: str | None = None
    assemble_with: str = "None"  # AWS's default
    kms_key_id: str | None = None


class TransformResources(ApiShape):
    instance_type: str
    instance_count: int = 1


class TransformDataProcessing(ApiShape):
    """``DataProcessing``; AWS's defaults: ``$`` filters, no join."""

    input_filter: str = "$"
    output_filter: str = "$"
    join_source: str = "None"


class ModelClientConfig(ApiShape):
    invocations_timeout_in_seconds: int | None = None
    invocations_max_retries: int | None = None


class CreateTransformJobRequest(ApiShape):
    transform_job_name: str
    model_name: str
    transform_input: TransformInput
    transform_output: TransformOutput
    transform_resources: TransformResources
    max_concurrent_transforms: int | None = None
    max_payload_in_mb: int | None = Field(default=None, alias="MaxPayloadInMB")
    batch_strategy: str | None = None
    model_client_config: ModelClientConfig = ModelClientConfig()
    environment: Mapping[str, str] = {}
    data_processing: TransformDataProcessing = TransformDataProcessing()
