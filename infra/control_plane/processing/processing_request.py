"""The typed CreateProcessingJob request the processing executor runs (parsed once by ``ProcessingJobs``)."""

from __future__ import annotations

from collections.abc import Mapping

from infra.control_plane.core.api_shapes import ApiShape, ClusterConfig, NetworkConfig, StoppingCondition


class ProcessingS3Input(ApiShape):
    s3_uri: str
    s3_data_type: str = "S3Prefix"
    local_path: str | None = None
    s3_input_mode: str | None = None
    s3_data_distribution_type: str | None = None
    s3_compression_type: str = "None"


class ProcessingInput(ApiShape):
    input_name: str
    s3_input: ProcessingS3Input | None = None


class ProcessingS3Output(ApiShape):
    s3_uri: str
    local_path: str | None = None
    s3_upload_mode: str | None = None


class ProcessingOutput(ApiShape):
    output_name: str
    s3_output: ProcessingS3Output | None = None


class ProcessingOutputConfig(ApiShape):
    outputs: tuple[ProcessingOutput, ...] = ()
    kms_key_id: str | None = None


class ProcessingResources(ApiShape):
    cluster_config: ClusterConfig = ClusterConfig()


class AppSpecification(ApiShape):
    image_uri: str
    container_entrypoint: tuple[str, ...] | None = None
    container_arguments: tuple[str, ...] | None = None


class CreateProcessingJobRequest(ApiShape):
    processing_job_name: str
    app_specification: AppSpecification
    processing_resources: ProcessingResources = ProcessingResources()
    processing_inputs: tuple[ProcessingInput, ...] = ()
    processing_output_config: ProcessingOutputConfig = ProcessingOutputConfig()
    stopping_condition: StoppingCondition = StoppingCondition()
    environment: Mapping[str, str] = {}
    network_config: NetworkConfig | None = None
    role_arn: str | None = None
