"""The typed CreateHyperParameterTuningJob request (parsed once by ``TuningJobs``; see docs/decisions.md).

The plan (:mod:`tuning_validation`) and the children's CreateTrainingJob requests are built from this value.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from infra.control_plane.core.api_shapes import (
    ApiShape,
    Channel,
    CheckpointConfig,
    MetricDefinition,
    OutputDataConfig,
    ResourceConfig,
    StoppingCondition,
)


class TuningObjective(ApiShape):
    """``HyperParameterTuningJobObjective``."""

    type: str
    metric_name: str


class NumericParameterRange(ApiShape):
    """``IntegerParameterRange`` and ``ContinuousParameterRange`` (same members; the values are strings)."""

    name: str
    min_value: str
    max_value: str
    scaling_type: str | None = None  # AWS's default is Auto (tuning_space resolves it)


class CategoricalParameterRange(ApiShape):
    name: str
    values: tuple[str, ...]


class ParameterRanges(ApiShape):
    integer_parameter_ranges: tuple[NumericParameterRange, ...] = ()
    continuous_parameter_ranges: tuple[NumericParameterRange, ...] = ()
    categorical_parameter_ranges: tuple[CategoricalParameterRange, ...] = ()


class HyperbandStrategyConfig(ApiShape):
    min_resource: int | None = None
    max_resource: int | None = None


class StrategyConfig(ApiShape):
    """``HyperParameterTuningJobStrategyConfig``."""

    hyperband_strategy_config: HyperbandStrategyConfig | None = None


class ResourceLimits(ApiShape):
    max_parallel_training_jobs: int
    max_number_of_training_jobs: int | None = None
    max_runtime_in_seconds: int | None = None


class BestObjectiveNotImproving(ApiShape):
    max_number_of_training_jobs_not_improving: int | None = None


class TuningJobCompletionCriteria(ApiShape):
    target_objective_metric_value: float | None = None
    best_objective_not_improving: BestObjectiveNotImproving = BestObjectiveNotImproving()


class TuningJobConfig(ApiShape):
    """``HyperParameterTuningJobConfig``."""

    strategy: str
    resource_limits: ResourceLimits
    strategy_config: StrategyConfig | None = None
    hyper_parameter_tuning_job_objective: TuningObjective | None = None
    parameter_ranges: ParameterRanges | None = None
    training_job_early_stopping_type: str = "Off"  # AWS's default
    tuning_job_completion_criteria: TuningJobCompletionCriteria = TuningJobCompletionCriteria()
    random_seed: int | None = None


class HyperParameterAlgorithmSpecification(ApiShape):
    training_image: str | None = None
    training_input_mode: str | None = None
    algorithm_name: str | None = None
    metric_definitions: tuple[MetricDefinition, ...] = ()


class TuningInstanceConfig(ApiShape):
    """``HyperParameterTuningInstanceConfig``."""

    instance_type: str | None = None
    instance_count: int | None = None
    volume_size_in_gb: int | None = Field(default=None, alias="VolumeSizeInGB")


class TuningResourceConfig(ApiShape):
    """``HyperParameterTuningResourceConfig``: what a definition without ``ResourceConfig`` runs on."""

    instance_type: str | None = None
    instance_count: int | None = None
    volume_size_in_gb: int | None = Field(default=None, alias="VolumeSizeInGB")
    instance_configs: tuple[TuningInstanceConfig, ...] = ()


class TrainingJobDefinition(ApiShape):
    """``HyperParameterTrainingJobDefinition``: the training jobs one definition launches."""

    algorithm_specification: HyperParameterAlgorithmSpecification
    output_data_config: OutputDataConfig
    definition_name: str | None = None
    tuning_objective: TuningObjective | None = None
    hyper_parameter_ranges: ParameterRanges | None = None
    static_hyper_parameters: Mapping[str, str] = {}
    role_arn: str | None = None
    input_data_config: tuple[Channel, ...] = ()
    resource_config: ResourceConfig | None = None
    hyper_parameter_tuning_resource_config: TuningResourceConfig | None = None
    stopping_condition: StoppingCondition = StoppingCondition()
    checkpoint_config: CheckpointConfig | None = None
    environment: Mapping[str, str] = {}


class ParentTuningJob(ApiShape):
    """``ParentHyperParameterTuningJob`` (its one member is optional in the API)."""

    hyper_parameter_tuning_job_name: str | None = None


class WarmStartConfig(ApiShape):
    """``HyperParameterTuningJobWarmStartConfig``."""

    parent_hyper_parameter_tuning_jobs: tuple[ParentTuningJob, ...]
    warm_start_type: str


class Autotune(ApiShape):
    mode: str


class CreateHyperParameterTuningJobRequest(ApiShape):
    hyper_parameter_tuning_job_name: str
    hyper_parameter_tuning_job_config: TuningJobConfig
    training_job_definition: TrainingJobDefinition | None = None
    training_job_definitions: tuple[TrainingJobDefinition, ...] = ()
    warm_start_config: WarmStartConfig | None = None
    autotune: Autotune | None = None
