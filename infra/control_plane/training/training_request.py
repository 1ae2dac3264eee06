"""The typed CreateTrainingJob request the training executor runs (parsed once by ``TrainingJobs``)."""

from __future__ import annotations

from collections.abc import Mapping

from infra.control_plane.core.api_shapes import (
    ApiShape,
    Channel,
    CheckpointConfig,
    MetricDefinition,
    OutputDataConfig,
    ResourceConfig,
    StoppingCondition,
)


class AlgorithmSpecification(ApiShape):
    training_image: str | None = None
    algorithm_name: str | None = None
    training_input_mode: str | None = None
    metric_definitions: tuple[MetricDefinition, ...] = ()
    container_entrypoint: tuple[str, ...] | None = None
    container_arguments: tuple[str, ...] | None = None


class CreateTrainingJobRequest(ApiShape):
    training_job_name: str
    algorithm_specification: AlgorithmSpecification
    output_data_config: OutputDataConfig
    resource_config: ResourceConfig = ResourceConfig()
    role_arn: str | None = None
    hyper_parameters: Mapping[str, str] = {}
    input_data_config: tuple[Channel, ...] = ()
    stopping_condition: StoppingCondition = StoppingCondition()
    checkpoint_config: CheckpointConfig | None = None
    environment: Mapping[str, str] = {}
    enable_network_isolation: bool = False
    enable_inter_container_traffic_encryption: bool = False
    enable_managed_spot_training: bool = False
