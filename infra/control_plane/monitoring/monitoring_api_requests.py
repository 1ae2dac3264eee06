"""The typed monitoring API requests: the four Create<Type>JobDefinition requests and a schedule's
``MonitoringScheduleConfig`` (parsed once by their services; see docs/decisions.md, "Typed requests").

The members the four job definitions name after their type (``DataQualityJobInput``, ``ModelBiasAppSpecification``,
...) are reached through :attr:`JobDefinitionRequest.parts`, so an execution reads them the same way for every type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from infra.control_plane.core.api_shapes import ApiShape, ClusterConfig, NetworkConfig, StoppingCondition

DEFAULT_MONITORING_MAX_RUNTIME_SECONDS = 3600  # a monitoring job without a StoppingCondition runs at most an hour


@dataclass(frozen=True)
class MonitoringApp:
    """What an execution runs, from any of the app specifications (members a type lacks are ``None``)."""

    image_uri: str
    container_entrypoint: tuple[str, ...] | None = None
    container_arguments: tuple[str, ...] | None = None
    record_preprocessor_source_uri: str | None = None
    post_analytics_processor_source_uri: str | None = None
    problem_type: str | None = None
    config_uri: str | None = None


class S3Resource(ApiShape):
    """``MonitoringConstraintsResource``, ``MonitoringStatisticsResource``, ``MonitoringGroundTruthS3Input``."""

    s3_uri: str | None = None


class BaselineConfig(ApiShape):
    """``ModelQualityBaselineConfig``, ``ModelBiasBaselineConfig``, ``ModelExplainabilityBaselineConfig``."""

    baselining_job_name: str | None = None
    constraints_resource: S3Resource | None = None

    @property
    def constraints_uri(self) -> str | None:
        return self.constraints_resource.s3_uri if self.constraints_resource else None

    @property
    def statistics_uri(self) -> str | None:
        return None


class DataQualityBaselineConfig(BaselineConfig):
    """``DataQualityBaselineConfig`` and the inline definition's ``MonitoringBaselineConfig``."""

    statistics_resource: S3Resource | None = None

    @property
    def statistics_uri(self) -> str | None:
        return self.statistics_resource.s3_uri if self.statistics_resource else None


class MonitoringAppSpecification(ApiShape):
    """The inline definition's ``MonitoringAppSpecification`` (the analyzer's members)."""

    image_uri: str
    container_entrypoint: tuple[str, ...] | None = None
    container_arguments: tuple[str, ...] | None = None
    record_preprocessor_source_uri: str | None = None
    post_analytics_processor_source_uri: str | None = None

    def app(self) -> MonitoringApp:
        return MonitoringApp(
            image_uri=self.image_uri,
            container_entrypoint=self.container_entrypoint,
            container_arguments=self.container_arguments,
            record_preprocessor_source_uri=self.record_preprocessor_source_uri,
            post_analytics_processor_source_uri=self.post_analytics_processor_source_uri,
        )


class DataQualityAppSpecification(MonitoringAppSpecification):
    environment: Mapping[str, str] = {}


class ModelQualityAppSpecification(DataQualityAppSpecification):
    problem_type: str | None = None

    def app(self) -> MonitoringApp:
        return replace(super().app(), problem_type=self.problem_type)


class ClarifyAppSpecification(ApiShape):
    """``ModelBiasAppSpecification`` and ``ModelExplainabilityAppSpecification`` (same members)."""

    image_uri: str
    config_uri: str
    environment: Mapping[str, str] = {}

    def app(self) -> MonitoringApp:
        return MonitoringApp(image_uri=self.image_uri, config_uri=self.config_uri)


class EndpointInput(ApiShape):
    endpoint_name: str
    local_path: str
    features_attribute: str | None = None
    inference_attribute: str | None = None
    probability_attribute: str | None = None
    probability_threshold_attribute: int | float | None = None  # as sent: an int stays an int
    start_time_offset: str | None = None
    end_time_offset: str | None = None


class BatchTransformInput(ApiShape):
    """Accepted and checked; executions over batch transform captures are not run yet."""

    local_path: str


class MonitoringJobInput(ApiShape):
    """``DataQualityJobInput``, ``ModelExplainabilityJobInput`` and the inline definition's ``MonitoringInput``."""

    endpoint_input: EndpointInput | None = None
    batch_transform_input: BatchTransformInput | None = None

    @property
    def ground_truth_uri(self) -> str | None:
        return None


class GroundTruthJobInput(MonitoringJobInput):
    """``ModelQualityJobInput`` and ``ModelBiasJobInput``."""

    ground_truth_s3_input: S3Resource | None = None

    @property
    def ground_truth_uri(self) -> str | None:
        return self.ground_truth_s3_input.s3_uri if self.ground_truth_s3_input else None


class MonitoringS3Output(ApiShape):
    s3_uri: str
    local_path: str
    s3_upload_mode: str = "EndOfJob"  # AWS's default


class MonitoringOutput(ApiShape):
    s3_output: MonitoringS3Output


class MonitoringOutputConfig(ApiShape):
    monitoring_outputs: tuple[MonitoringOutput, ...]
    kms_key_id: str | None = None


class MonitoringResources(ApiShape):
    cluster_config: ClusterConfig


@dataclass(frozen=True)
class DefinitionParts:
    """The members of a job definition that its type names (``<Type>BaselineConfig``, ...)."""

    baseline: BaselineConfig | None
    app_specification: DataQualityAppSpecification | ClarifyAppSpecification
    job_input: MonitoringJobInput
    output_config: MonitoringOutputConfig


class JobDefinitionRequest(ApiShape):
    """The members every Create<Type>JobDefinition request has."""

    job_definition_name: str
    job_resources: MonitoringResources
    role_arn: str
    network_config: NetworkConfig | None = None
    stopping_condition: StoppingCondition | None = None

    @property
    def parts(self) -> DefinitionParts:
        raise NotImplementedError


class CreateDataQualityJobDefinitionRequest(JobDefinitionRequest):
    data_quality_app_specification: DataQualityAppSpecification
    data_quality_job_input: MonitoringJobInput
    data_quality_job_output_config: MonitoringOutputConfig
    data_quality_baseline_config: DataQualityBaselineConfig | None = None

    @property
    def parts(self) -> DefinitionParts:
        return DefinitionParts(
            self.data_quality_baseline_config,
            self.data_quality_app_specification,
            self.data_quality_job_input,
            self.data_quality_job_output_config,
        )


class CreateModelQualityJobDefinitionRequest(JobDefinitionRequest):
    model_quality_app_specification: ModelQualityAppSpecification
    model_quality_job_input: GroundTruthJobInput
    model_quality_job_output_config: MonitoringOutputConfig
    model_quality_baseline_config: BaselineConfig | None = None

    @property
    def parts(self) -> DefinitionParts:
        return DefinitionParts(
            self.model_quality_baseline_config,
            self.model_quality_app_specification,
            self.model_quality_job_input,
            self.model_quality_job_output_config,
        )


class CreateModelBiasJobDefinitionRequest(JobDefinitionRequest):
    model_bias_app_specification: ClarifyAppSpecification
    model_bias_job_input: GroundTruthJobInput
    model_bias_job_output_config: MonitoringOutputConfig
    model_bias_baseline_config: BaselineConfig | None = None

    @property
    def parts(self) -> DefinitionParts:
        return DefinitionParts(
            self.model_bias_baseline_config,
            self.model_bias_app_specification,
            self.model_bias_job_input,
            self.model_bias_job_output_config,
        )


class CreateModelExplainabilityJobDefinitionRequest(JobDefinitionRequest):
    model_explainability_app_specification: ClarifyAppSpecification
    model_explainability_job_input: MonitoringJobInput
    model_explainability_job_output_config: MonitoringOutputConfig
    model_explainability_baseline_config: BaselineConfig | None = None

    @property
    def parts(self) -> DefinitionParts:
        return DefinitionParts(
            self.model_explainability_baseline_config,
            self.model_explainability_app_specification,
            self.model_explainability_job_input,
            self.model_explainability_job_output_config,
        )


class InlineJobDefinition(ApiShape):
    """A schedule's inline ``MonitoringJobDefinition`` (a data quality job)."""

    monitoring_inputs: tuple[MonitoringJobInput, ...]
    monitoring_output_config: MonitoringOutputConfig
    monitoring_resources: MonitoringResources
    monitoring_app_specification: MonitoringAppSpecification
    role_arn: str
    baseline_config: DataQualityBaselineConfig | None = None
    stopping_condition: StoppingCondition | None = None
    environment: Mapping[str, str] = {}
    network_config: NetworkConfig | None = None


class ScheduleConfig(ApiShape):
    schedule_expression: str
    data_analysis_start_time: str | None = None
    data_analysis_end_time: str | None = None


class MonitoringScheduleConfig(ApiShape):
    schedule_config: ScheduleConfig | None = None
    monitoring_job_definition: InlineJobDefinition | None = None
    monitoring_job_definition_name: str | None = None
    monitoring_type: str | None = None


class MonitoringScheduleRequest(ApiShape):
    """CreateMonitoringSchedule and UpdateMonitoringSchedule (the same members besides Create's ``Tags``)."""

    monitoring_schedule_name: str
    monitoring_schedule_config: MonitoringScheduleConfig
