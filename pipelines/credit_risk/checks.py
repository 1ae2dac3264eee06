"""The credit-risk pipeline's Clarify and Model Monitor checks, and the model package fields they fill.

* ``DataBiasCheck`` (Clarify, pre-training) and ``DataQualityCheck`` (Model Monitor) on the labelled train split,
  before training;
* ``ModelBiasCheck`` (post-training) and ``ExplainabilityCheck`` (Kernel SHAP, tiny budget) on the labelled test
  split through the created model; ``ModelQualityCheck`` on the evaluation predictions.

Every check registers its calculated baseline (``RegisterNewBaselines``) and is skipped on the first run
(``SkipChecks``); with ``SkipChecks=false`` they compare against the latest Approved package of the group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sagemaker.clarify import BiasConfig, DataConfig, ModelConfig, ModelPredictedLabelConfig, SHAPConfig
from sagemaker.drift_check_baselines import DriftCheckBaselines
from sagemaker.model_metrics import MetricsSource, ModelMetrics
from sagemaker.model_monitor.dataset_format import DatasetFormat
from sagemaker.workflow.check_job_config import CheckJobConfig
from sagemaker.workflow.clarify_check_step import (
    ClarifyCheckStep,
    DataBiasCheckConfig,
    ModelBiasCheckConfig,
    ModelExplainabilityCheckConfig,
)
from sagemaker.workflow.parameters import ParameterBoolean
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.quality_check_step import DataQualityCheckConfig, ModelQualityCheckConfig, QualityCheckStep

LABEL = "risk"
FACETS = ["sex", "age"]
FACET_VALUES: Any = [[1], [25]]  # sex: 1 = female; age: the group is "older than 25"
BIAS_METHODS = ["CI", "DPL", "KL", "JS"]
MODEL_BIAS_METHODS = ["DPPL", "DI", "AD", "RD"]
SHAP_SAMPLES = 24
JSON = "application/json"


@dataclass(frozen=True)
class CheckSettings:
    role: str
    prefix: str
    instance_type: str
    model_package_group: str
    skip: Any  # ParameterBoolean (a variable, not a type, for mypy)
    register: Any
    cache: Any = None  # CacheConfig shared with the other steps: identical checks are cache hits on a rerun


def check_parameters() -> tuple[Any, Any]:
    return ParameterBoolean("SkipChecks", default_value=True), ParameterBoolean(
        "RegisterNewBaselines", default_value=True
    )


def _job(settings: CheckSettings, session: PipelineSession) -> CheckJobConfig:
    return CheckJobConfig(
        role=settings.role, instance_count=1, instance_type=settings.instance_type, sagemaker_session=session
    )


def _flags(settings: CheckSettings) -> dict[str, Any]:
    return {
        "skip_check": settings.skip,
        "register_new_baseline": settings.register,
        "model_package_group_name": settings.model_package_group,
        "cache_config": settings.cache,
    }


def _data(settings: CheckSettings, dataset: Any, name: str) -> DataConfig:
    return DataConfig(
        s3_data_input_path=dataset,
        s3_output_path=f"{settings.prefix}/checks/{name}",
        s3_analysis_config_output_path=f"{settings.prefix}/checks/{name}/config",
        label=LABEL,
        dataset_type="text/csv",
    )


def _bias() -> BiasConfig:
    return BiasConfig(label_values_or_threshold=[1], facet_name=FACETS, facet_values_or_threshold=FACET_VALUES)


def data_checks(
    settings: CheckSettings, session: PipelineSession, train: Any
) -> tuple[ClarifyCheckStep, QualityCheckStep]:
    """Data bias and data quality on the labelled train split (``train`` = its S3 URI)."""
    bias = ClarifyCheckStep(
        name="DataBiasCheck",
        clarify_check_config=DataBiasCheckConfig(
            data_config=_data(settings, train, "data-bias"), data_bias_config=_bias(), methods=BIAS_METHODS
        ),
        check_job_config=_job(settings, session),
        **_flags(settings),
    )
    quality = QualityCheckStep(
        name="DataQualityCheck",
        quality_check_config=DataQualityCheckConfig(
            baseline_dataset=train,
            dataset_format=DatasetFormat.csv(header=True),
            output_s3_uri=f"{settings.prefix}/checks/data-quality",
        ),
        check_job_config=_job(settings, session),
        **_flags(settings),
    )
    return bias, quality


def model_checks(
    settings: CheckSettings, session: PipelineSession, test: Any, model_name: Any, predictions: Any
) -> tuple[ClarifyCheckStep, ClarifyCheckStep, QualityCheckStep]:
    """Model bias and SHAP through the created model (a shadow endpoint), and model quality on the predictions."""
    model = ModelConfig(
        model_name=model_name,
        instance_type=settings.instance_type,
        instance_count=1,
        accept_type="text/csv",
        content_type="text/csv",
    )
    bias = ClarifyCheckStep(
        name="ModelBiasCheck",
        clarify_check_config=ModelBiasCheckConfig(
            data_config=_data(settings, test, "model-bias"),
            data_bias_config=_bias(),
            model_config=model,
            model_predicted_label_config=ModelPredictedLabelConfig(probability_threshold=0.5),
            methods=MODEL_BIAS_METHODS,
        ),
        check_job_config=_job(settings, session),
        **_flags(settings),
    )
    explainability = ClarifyCheckStep(
        name="ExplainabilityCheck",
        clarify_check_config=ModelExplainabilityCheckConfig(
            data_config=_data(settings, test, "explainability"),
            model_config=model,
            explainability_config=SHAPConfig(num_samples=SHAP_SAMPLES, num_clusters=1, agg_method="mean_abs", seed=0),
        ),
        check_job_config=_job(settings, session),
        **_flags(settings),
    )
    quality = QualityCheckStep(
        name="ModelQualityCheck",
        quality_check_config=ModelQualityCheckConfig(
            baseline_dataset=predictions,
            dataset_format=DatasetFormat.csv(header=True),
            problem_type="BinaryClassification",
            inference_attribute="prediction",
            probability_attribute="probability",
            ground_truth_attribute="label",
            output_s3_uri=f"{settings.prefix}/checks/model-quality",
        ),
        check_job_config=_job(settings, session),
        **_flags(settings),
    )
    return bias, explainability, quality


def _source(uri: Any) -> MetricsSource:
    return MetricsSource(s3_uri=uri, content_type=JSON)


def registry_fields(
    data_bias: ClarifyCheckStep,
    data_quality: QualityCheckStep,
    model_bias: ClarifyCheckStep,
    explainability: ClarifyCheckStep,
    model_quality: QualityCheckStep,
) -> tuple[ModelMetrics, DriftCheckBaselines]:
    """``ModelMetrics`` = what this run calculated; ``DriftCheckBaselines`` = what later checks compare against."""
    metrics = ModelMetrics(
        model_statistics=_source(model_quality.properties.CalculatedBaselineStatistics),
        model_constraints=_source(model_quality.properties.CalculatedBaselineConstraints),
        model_data_statistics=_source(data_quality.properties.CalculatedBaselineStatistics),
        model_data_constraints=_source(data_quality.properties.CalculatedBaselineConstraints),
        bias_pre_training=_source(data_bias.properties.CalculatedBaselineConstraints),
        bias_post_training=_source(model_bias.properties.CalculatedBaselineConstraints),
        explainability=_source(explainability.properties.CalculatedBaselineConstraints),
    )
    baselines = DriftCheckBaselines(
        model_statistics=_source(model_quality.properties.BaselineUsedForDriftCheckStatistics),
        model_constraints=_source(model_quality.properties.BaselineUsedForDriftCheckConstraints),
        model_data_statistics=_source(data_quality.properties.BaselineUsedForDriftCheckStatistics),
        model_data_constraints=_source(data_quality.properties.BaselineUsedForDriftCheckConstraints),
        bias_pre_training_constraints=_source(data_bias.properties.BaselineUsedForDriftCheckConstraints),
        bias_post_training_constraints=_source(model_bias.properties.BaselineUsedForDriftCheckConstraints),
        explainability_constraints=_source(explainability.properties.BaselineUsedForDriftCheckConstraints),
    )
    return metrics, baselines
