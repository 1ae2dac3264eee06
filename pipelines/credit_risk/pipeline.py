"""The credit-risk pipeline, defined with the SageMaker Python SDK v2 (same definition locally and on AWS).

features (``PySparkProcessor`` running ``spark_jobs/features/credit.py --processing --feature-group ...``: every
encoded application into the feature group ``<name>-features``, online and offline store) -> training set (the
splits built from the offline store with a point-in-time query, ``scripts/training_set.py``) -> data bias + data quality
checks -> XGBoost tuning (Bayesian) or training -> evaluation (processing, ``evaluation.json`` as a PropertyFile)
-> AUC >= threshold ? (create model -> model bias, explainability and model quality checks -> register model
package with their baselines; batch transform of the test split) : Fail with the metric in the message. The checks
are in ``checks.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagemaker import image_uris
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.model import Model
from sagemaker.processing import ProcessingInput, ProcessingOutput
from sagemaker.sklearn.processing import SKLearnProcessor
from sagemaker.spark.processing import PySparkProcessor
from sagemaker.transformer import Transformer
from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter
from sagemaker.workflow.condition_step import ConditionStep
from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
from sagemaker.workflow.fail_step import FailStep
from sagemaker.workflow.functions import Join, JsonGet
from sagemaker.workflow.model_step import ModelStep
from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.properties import PropertyFile
from sagemaker.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TransformStep, TuningStep

from pipelines.credit_risk.checks import CheckSettings, check_parameters, data_checks, model_checks, registry_fields
from pipelines.credit_risk.packaging import SPARK_JOBS, build_py_files

SCRIPTS = Path(__file__).resolve().parent / "scripts"
FEATURE_JOB = SPARK_JOBS / "features" / "credit.py"
XGBOOST_VERSION = "1.7-1"
SKLEARN_VERSION = "1.2-1"
SPARK_VERSION = "3.5"  # the newest SageMaker Spark processing image (PySpark 3.5)
# TrainingSet's output name -> folder under s3://<bucket>/<pipeline>/features/ (fixed, so `make score` finds the
# test split; the label-less split's folder must not start with "test", or the prefix "features/test" would match it)
FEATURE_OUTPUTS = {
    "train": "train",
    "validation": "validation",
    "test": "test",
    "test_features": "unlabelled_test",
    "labelled_train": "labelled_train",
    "labelled_test": "labelled_test",
    "online_scoring": "online_scoring",  # the test split's applicant ids and labels: `make score` (online store)
}
ENTITIES = "entities"  # the Features step's one output: keys, splits and labels (the point-in-time join's base)
AUC_PATH = "binary_classification_metrics.auc.value"
STATIC_HYPERPARAMETERS = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "num_round": "200",
    "early_stopping_rounds": "20",
    "subsample": "0.8",
    "seed": "42",
}


@dataclass(frozen=True)
class CreditRiskConfig:
    """What changes between environments (local stack, AWS account); everything else is the definition."""

    name: str
    role: str
    bucket: str
    input_uri: str
    use_tuning: bool = True
    max_tuning_jobs: int = 6
    parallel_tuning_jobs: int = 2
    model_package_group: str = "credit-risk"
    instance_type: str = "ml.m5.large"
    cache_expire_after: str = "P30D"

    @property
    def feature_group(self) -> str:
        return f"{self.name}-features"


def build(config: CreditRiskConfig, session: PipelineSession) -> Pipeline:
    """The pipeline object; ``upsert()`` and ``start()`` it with the same session."""
    input_data = ParameterString("InputData", default_value=config.input_uri)
    auc_threshold = ParameterFloat("AucThreshold", default_value=0.7)
    approval = ParameterString(
        "ModelApprovalStatus", default_value="PendingManualApproval", enum_values=["Approved", "PendingManualApproval"]
    )
    max_depth = ParameterInteger("MaxDepth", default_value=3)
    cache = CacheConfig(enable_caching=True, expire_after=config.cache_expire_after)
    prefix = f"s3://{config.bucket}/{config.name}"

    features = _features_step(config, session, input_data, cache)
    processor = SKLearnProcessor(
        framework_version=SKLEARN_VERSION,
        role=config.role,
        instance_type=config.instance_type,
        instance_count=1,
        base_job_name=f"{config.name}-proc",
        sagemaker_session=session,
    )
    training_set = _training_set_step(config, processor, features, cache)
    channel = training_set.properties.ProcessingOutputConfig.Outputs
    estimator = Estimator(
        image_uri=image_uris.retrieve("xgboost", session.boto_region_name, XGBOOST_VERSION),
        role=config.role,
        instance_type=config.instance_type,
        instance_count=1,
        output_path=f"{prefix}/models",
        hyperparameters={**STATIC_HYPERPARAMETERS, "max_depth": max_depth},
        sagemaker_session=session,
    )
    inputs = {
        name: TrainingInput(channel[name].S3Output.S3Uri, content_type="text/csv") for name in ("train", "validation")
    }
    skip_checks, register_baselines = check_parameters()
    checks = CheckSettings(
        config.role, prefix, config.instance_type, config.model_package_group, skip_checks, register_baselines, cache
    )
    data_bias, data_quality = data_checks(checks, session, channel["labelled_train"].S3Output.S3Uri)
    model_data, train_step = _train(config, estimator, inputs, cache)
    train_step.add_depends_on([data_bias, data_quality])

    evaluation_report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluation = ProcessingStep(
        "Evaluate",
        step_args=processor.run(
            code=str(SCRIPTS / "evaluate.py"),
            inputs=[
                ProcessingInput(source=model_data, destination="/opt/ml/processing/model", input_name="model"),
                ProcessingInput(
                    source=channel["test"].S3Output.S3Uri, destination="/opt/ml/processing/test", input_name="test"
                ),
            ],
            outputs=[
                ProcessingOutput(output_name=name, source=f"/opt/ml/processing/{name}")
                for name in ("evaluation", "predictions")
            ],
        ),
        property_files=[evaluation_report],
        cache_config=cache,
    )
    auc: Any = JsonGet(step_name=evaluation.name, property_file=evaluation_report, json_path=AUC_PATH)

    model = Model(
        image_uri=image_uris.retrieve("xgboost", session.boto_region_name, XGBOOST_VERSION),
        model_data=model_data,
        role=config.role,
        sagemaker_session=session,
    )
    create_model = ModelStep("CreditModel", step_args=model.create(instance_type=config.instance_type))
    predictions = evaluation.properties.ProcessingOutputConfig.Outputs["predictions"].S3Output.S3Uri
    model_bias, explainability, model_quality = model_checks(
        checks, session, channel["labelled_test"].S3Output.S3Uri, create_model.properties.ModelName, predictions
    )
    model_metrics, drift_baselines = registry_fields(data_bias, data_quality, model_bias, explainability, model_quality)
    register = ModelStep(
        "RegisterCreditModel",
        step_args=model.register(
            content_types=["text/csv"],
            response_types=["text/csv"],
            inference_instances=[config.instance_type],
            transform_instances=[config.instance_type],
            model_package_group_name=config.model_package_group,
            approval_status=approval,
            model_metrics=model_metrics,
            drift_check_baselines=drift_baselines,
        ),
    )
    transformer = Transformer(
        model_name=create_model.properties.ModelName,
        instance_type=config.instance_type,
        instance_count=1,
        accept="text/csv",
        assemble_with="Line",
        output_path=f"{prefix}/scores",
        sagemaker_session=session,
    )
    transform = TransformStep(
        "ScoreTestSplit",
        step_args=transformer.transform(
            channel["test_features"].S3Output.S3Uri, content_type="text/csv", split_type="Line"
        ),
        cache_config=cache,
    )
    fail = FailStep(
        "AucTooLow",
        error_message=Join(on=" ", values=["Model AUC", auc, "is below the threshold", auc_threshold]),
    )
    gate = ConditionStep(
        "AucGate",
        conditions=[ConditionGreaterThanOrEqualTo(left=auc, right=auc_threshold)],
        if_steps=[create_model, model_bias, explainability, model_quality, register, transform],
        else_steps=[fail],
    )
    return Pipeline(
        name=config.name,
        parameters=[input_data, auc_threshold, approval, max_depth, skip_checks, register_baselines],
        steps=[features, training_set, data_bias, data_quality, train_step, evaluation, gate],
        sagemaker_session=session,
    )


def _features_step(
    config: CreditRiskConfig, session: PipelineSession, input_data: Any, cache: CacheConfig
) -> ProcessingStep:
    """The Spark feature job in processing mode, writing the feature group; ``spark_jobs`` ships as a reproducible
    zip."""
    spark = PySparkProcessor(
        framework_version=SPARK_VERSION,
        role=config.role,
        instance_type=config.instance_type,
        instance_count=1,
        base_job_name=f"{config.name}-features",
        sagemaker_session=session,
    )
    return ProcessingStep(
        "Features",
        step_args=spark.run(
            submit_app=str(FEATURE_JOB),
            submit_py_files=[str(build_py_files())],
            inputs=[ProcessingInput(source=input_data, destination="/opt/ml/processing/input", input_name="raw")],
            outputs=[
                ProcessingOutput(
                    output_name=ENTITIES,
                    source=f"/opt/ml/processing/{ENTITIES}",
                    destination=f"s3://{config.bucket}/{config.name}/features/{ENTITIES}",
                )
            ],
            arguments=[
                "--processing",
                "--seed",
                "42",
                "--feature-group",
                config.feature_group,
                "--feature-group-role",
                config.role,
                "--offline-store-uri",
                f"s3://{config.bucket}/{config.name}/feature-store",
            ],
        ),
        cache_config=cache,
    )


def _training_set_step(
    config: CreditRiskConfig, processor: SKLearnProcessor, features: ProcessingStep, cache: CacheConfig
) -> ProcessingStep:
    """The splits from the offline store: the entities joined point in time to the feature group (DatasetBuilder)."""
    entities = features.properties.ProcessingOutputConfig.Outputs[ENTITIES].S3Output.S3Uri
    return ProcessingStep(
        "TrainingSet",
        step_args=processor.run(
            code=str(SCRIPTS / "training_set.py"),
            inputs=[
                ProcessingInput(source=entities, destination=f"/opt/ml/processing/{ENTITIES}", input_name=ENTITIES)
            ],
            outputs=[
                ProcessingOutput(
                    output_name=name,
                    source=f"/opt/ml/processing/{name}",
                    destination=f"s3://{config.bucket}/{config.name}/features/{folder}",
                )
                for name, folder in FEATURE_OUTPUTS.items()
            ],
            arguments=[
                "--feature-group",
                config.feature_group,
                "--output-path",
                f"s3://{config.bucket}/{config.name}/training-set",
            ],
        ),
        cache_config=cache,
    )


def _train(
    config: CreditRiskConfig, estimator: Estimator, inputs: dict[str, TrainingInput], cache: CacheConfig
) -> tuple[Any, TrainingStep | TuningStep]:
    """A Bayesian tuning step when the target supports it, else one training job with the static values."""
    if not config.use_tuning:
        training = TrainingStep("Train", step_args=estimator.fit(inputs), cache_config=cache)
        return training.properties.ModelArtifacts.S3ModelArtifacts, training
    tuner = HyperparameterTuner(
        estimator,
        objective_metric_name="validation:auc",
        objective_type="Maximize",
        hyperparameter_ranges={
            "eta": ContinuousParameter(0.02, 0.3),
            "min_child_weight": IntegerParameter(1, 8),
            "colsample_bytree": ContinuousParameter(0.5, 1.0),
        },
        strategy="Bayesian",
        max_jobs=config.max_tuning_jobs,
        max_parallel_jobs=config.parallel_tuning_jobs,
    )
    step = TuningStep("Tune", step_args=tuner.fit(inputs), cache_config=cache)
    return step.get_top_model_s3_uri(top_k=0, s3_bucket=config.bucket, prefix=f"{config.name}/models"), step
