"""Typed Create requests: known answers for the parsers, AWS's defaults, and aliases that are botocore members."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from pydantic import BaseModel

from infra.control_plane.core.api_shapes import ApiShape, given, parse_request
from infra.control_plane.core.errors import ValidationException
from infra.control_plane.hosting.hosting_requests import CreateEndpointConfigRequest, CreateModelRequest
from infra.control_plane.monitoring.monitoring_api_requests import (
    CreateDataQualityJobDefinitionRequest,
    CreateModelBiasJobDefinitionRequest,
    CreateModelExplainabilityJobDefinitionRequest,
    CreateModelQualityJobDefinitionRequest,
    MonitoringScheduleRequest,
)
from infra.control_plane.pipeline_engine.pipeline_requests import (
    CreatePipelineRequest,
    StartPipelineExecutionRequest,
    UpdatePipelineRequest,
)
from infra.control_plane.processing.processing_request import CreateProcessingJobRequest
from infra.control_plane.training.training_request import CreateTrainingJobRequest
from infra.control_plane.transform.transform_request import CreateTransformJobRequest
from infra.control_plane.tuning.tuning_request import CreateHyperParameterTuningJobRequest, ParameterRanges

_TRAINING: dict[str, Any] = {
    "TrainingJobName": "xgb-1",
    "RoleArn": "arn:aws:iam::000000000000:role/SageMakerRole",
    "AlgorithmSpecification": {
        "TrainingImage": "sagemaker-xgboost:1.7-1",
        "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "train:rmse", "Regex": "rmse:(\\S+)"}],
    },
    "HyperParameters": {"num_round": "10"},
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train/"}},
            "ContentType": "text/csv",
        }
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://b/output"},
    "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 5},
    "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    "CheckpointConfig": {"S3Uri": "s3://b/checkpoints"},
    "Environment": {"A": "1"},
    "Tags": [{"Key": "k", "Value": "v"}],
}


def test_training_request_parses_into_the_expected_value() -> None:
    request = parse_request(CreateTrainingJobRequest, _TRAINING)
    assert request.training_job_name == "xgb-1"
    assert request.algorithm_specification.training_image == "sagemaker-xgboost:1.7-1"
    assert [(d.name, d.regex) for d in request.algorithm_specification.metric_definitions] == [
        ("train:rmse", "rmse:(\\S+)")
    ]
    assert request.resource_config.instance_count == 2
    assert request.resource_config.volume_size_in_gb == 5
    assert request.stopping_condition.max_runtime_in_seconds == 600
    assert request.checkpoint_config is not None and request.checkpoint_config.s3_uri == "s3://b/checkpoints"
    [channel] = request.input_data_config
    assert channel.channel_name == "train" and channel.content_type == "text/csv"
    assert channel.data_source.s3_data_source is not None
    assert channel.data_source.s3_data_source.s3_uri == "s3://b/train/"
    assert dict(request.hyper_parameters) == {"num_round": "10"}


def test_training_defaults_are_aws_documented_ones() -> None:
    minimal = {k: _TRAINING[k] for k in ("TrainingJobName", "AlgorithmSpecification", "OutputDataConfig")}
    minimal["InputDataConfig"] = [
        {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t"}}}
    ]
    request = parse_request(CreateTrainingJobRequest, minimal)
    channel = request.input_data_config[0]
    assert (channel.input_mode, channel.compression_type, channel.record_wrapper_type) == ("File", "None", "None")
    assert channel.data_source.s3_data_source is not None
    assert channel.data_source.s3_data_source.s3_data_distribution_type == "FullyReplicated"
    assert request.stopping_condition.max_runtime_in_seconds == 86400  # one day
    assert request.checkpoint_config is None
    assert request.enable_network_isolation is False


def test_wire_gives_back_the_request_as_sent() -> None:
    assert parse_request(CreateTrainingJobRequest, _TRAINING).wire() == _TRAINING


def test_the_value_is_frozen() -> None:
    request = parse_request(CreateTrainingJobRequest, _TRAINING)
    with pytest.raises(ValueError):
        request.training_job_name = "other"


def test_processing_request_parses_into_the_expected_value() -> None:
    params = {
        "ProcessingJobName": "p-1",
        "AppSpecification": {"ImageUri": "sagestack/processing", "ContainerEntrypoint": ["python3", "/x.py"]},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        },
        "ProcessingInputs": [
            {
                "InputName": "in",
                "S3Input": {
                    "S3Uri": "s3://b/in",
                    "LocalPath": "/opt/ml/processing/input",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": "s3://b/out",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "RoleArn": "arn:aws:iam::000000000000:role/R",
    }
    request = parse_request(CreateProcessingJobRequest, params)
    assert request.app_specification.container_entrypoint == ("python3", "/x.py")
    assert request.processing_resources.cluster_config.volume_size_in_gb == 30
    [item] = request.processing_inputs
    assert item.s3_input is not None and item.s3_input.s3_compression_type == "None"
    [output] = request.processing_output_config.outputs
    assert output.s3_output is not None and output.s3_output.local_path == "/opt/ml/processing/output"
    assert request.stopping_condition.max_runtime_in_seconds == 3600
    assert request.wire() == params


def test_transform_request_parses_into_the_expected_value_and_defaults() -> None:
    params = {
        "TransformJobName": "t-1",
        "ModelName": "m",
        "MaxPayloadInMB": 6,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in"}}},
        "TransformOutput": {"S3OutputPath": "s3://b/out"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    request = parse_request(CreateTransformJobRequest, params)
    assert request.max_payload_in_mb == 6
    assert (request.transform_input.split_type, request.transform_input.compression_type) == ("None", "None")
    assert request.transform_output.assemble_with == "None"
    processing = request.data_processing
    assert (processing.input_filter, processing.output_filter, processing.join_source) == ("$", "$", "None")
    assert request.model_client_config.invocations_max_retries is None
    assert request.wire() == params


def test_a_request_that_does_not_fit_is_a_validation_exception() -> None:
    with pytest.raises(ValidationException):
        parse_request(CreateTrainingJobRequest, {"TrainingJobName": "x"})


def test_endpoint_config_request_parses_with_aws_defaults() -> None:
    params = {
        "EndpointConfigName": "c",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1}],
        "DataCaptureConfig": {
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": "s3://b/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
    }
    request = parse_request(CreateEndpointConfigRequest, params)
    [variant] = request.production_variants
    assert (variant.variant_name, variant.model_name, variant.initial_variant_weight) == ("AllTraffic", "m", 1.0)
    capture = request.data_capture_config
    assert capture is not None and capture.enable_capture is True
    assert [o.capture_mode for o in capture.capture_options] == ["Input", "Output"]
    assert request.wire() == params


def test_model_request_parses_its_container() -> None:
    params = {"ModelName": "m", "PrimaryContainer": {"Image": "xgb", "ModelDataUrl": "s3://b/model.tar.gz"}}
    request = parse_request(CreateModelRequest, params)
    assert request.primary_container is not None and request.primary_container.model_data_url == "s3://b/model.tar.gz"
    assert dict(request.primary_container.environment) == {}


_TUNING: dict[str, Any] = {
    "HyperParameterTuningJobName": "tune-1",
    "HyperParameterTuningJobConfig": {
        "Strategy": "Hyperband",
        "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 2, "MaxResource": 9}},
        "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:rmse"},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2},
        "ParameterRanges": {
            "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "5"}],
            "ContinuousParameterRanges": [
                {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"}
            ],
            "CategoricalParameterRanges": [{"Name": "tree_method", "Values": ["hist", "exact"]}],
        },
        "TuningJobCompletionCriteria": {"TargetObjectiveMetricValue": 0.25},
        "RandomSeed": 7,
    },
    "TrainingJobDefinition": {
        "AlgorithmSpecification": {"TrainingImage": "sagemaker-xgboost:1.7-1", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::000000000000:role/R",
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "HyperParameterTuningResourceConfig": {
            "InstanceConfigs": [{"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 4}]
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        "StaticHyperParameters": {"num_round": "9"},
        "RetryStrategy": {"MaximumRetryAttempts": 1},
    },
    "WarmStartConfig": {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "tune-0"}],
        "WarmStartType": "IdenticalDataAndAlgorithm",
    },
}


def test_tuning_request_parses_into_the_expected_value() -> None:
    request = parse_request(CreateHyperParameterTuningJobRequest, _TUNING)
    config = request.hyper_parameter_tuning_job_config
    assert (config.strategy, config.random_seed) == ("Hyperband", 7)
    assert config.strategy_config is not None and config.strategy_config.hyperband_strategy_config is not None
    assert config.strategy_config.hyperband_strategy_config.max_resource == 9
    assert config.resource_limits.max_number_of_training_jobs == 6
    assert config.resource_limits.max_runtime_in_seconds is None
    assert config.tuning_job_completion_criteria.target_objective_metric_value == 0.25
    ranges = config.parameter_ranges
    assert ranges is not None
    assert [(r.name, r.scaling_type) for r in ranges.continuous_parameter_ranges] == [("eta", "Logarithmic")]
    assert ranges.categorical_parameter_ranges[0].values == ("hist", "exact")
    definition = request.training_job_definition
    assert definition is not None and request.training_job_definitions == ()
    assert definition.resource_config is None
    assert definition.hyper_parameter_tuning_resource_config is not None
    assert definition.hyper_parameter_tuning_resource_config.instance_configs[0].volume_size_in_gb == 4
    assert dict(definition.static_hyper_parameters) == {"num_round": "9"}
    assert request.warm_start_config is not None
    assert request.warm_start_config.parent_hyper_parameter_tuning_jobs[0].hyper_parameter_tuning_job_name == "tune-0"
    assert request.wire() == _TUNING


def test_tuning_defaults_are_aws_documented_ones() -> None:
    request = parse_request(CreateHyperParameterTuningJobRequest, _TUNING)
    config = request.hyper_parameter_tuning_job_config
    assert config.training_job_early_stopping_type == "Off"
    assert (
        config.tuning_job_completion_criteria.best_objective_not_improving.max_number_of_training_jobs_not_improving
        is None
    )
    assert config.parameter_ranges is not None
    assert config.parameter_ranges.integer_parameter_ranges[0].scaling_type is None  # Auto, resolved by the plan
    assert request.autotune is None
    # An empty structure counts as not given (a definition's HyperParameterRanges {} falls back to the config's).
    assert given(config.parameter_ranges) and not given(None) and not given(parse_request(ParameterRanges, {}))


_SHAPES: dict[type[BaseModel], str] = {
    CreateModelRequest: "CreateModelInput",
    CreateEndpointConfigRequest: "CreateEndpointConfigInput",
    CreateTrainingJobRequest: "CreateTrainingJobRequest",
    CreateProcessingJobRequest: "CreateProcessingJobRequest",
    CreateTransformJobRequest: "CreateTransformJobRequest",
    CreateHyperParameterTuningJobRequest: "CreateHyperParameterTuningJobRequest",
    CreateDataQualityJobDefinitionRequest: "CreateDataQualityJobDefinitionRequest",
    CreateModelQualityJobDefinitionRequest: "CreateModelQualityJobDefinitionRequest",
    CreateModelBiasJobDefinitionRequest: "CreateModelBiasJobDefinitionRequest",
    CreateModelExplainabilityJobDefinitionRequest: "CreateModelExplainabilityJobDefinitionRequest",
    MonitoringScheduleRequest: "CreateMonitoringScheduleRequest",  # and Update: test_typed_monitoring_requests
    CreatePipelineRequest: "CreatePipelineRequest",
    UpdatePipelineRequest: "UpdatePipelineRequest",
    StartPipelineExecutionRequest: "StartPipelineExecutionRequest",
}


def _nested(annotation: Any) -> list[type[ApiShape]]:
    """The ApiShape classes inside ``X``, ``X | None``, ``tuple[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, ApiShape):
        return [annotation]
    found: list[type[ApiShape]] = []
    for arg in getattr(annotation, "__args__", ()):
        found.extend(_nested(arg))
    return found


@pytest.mark.parametrize("model", list(_SHAPES), ids=lambda m: m.__name__)
def test_every_alias_is_a_member_of_the_botocore_shape(model: type[ApiShape]) -> None:
    service = botocore.session.get_session().get_service_model("sagemaker")

    def check(value: type[ApiShape], shape: Any) -> None:
        for name, info in value.model_fields.items():
            alias = info.alias or name
            assert alias in shape.members, f"{value.__name__}.{name}: {alias} not in {shape.name}"
            member = shape.members[alias]
            member = getattr(member, "member", member)
            for inner in _nested(info.annotation):
                check(inner, member)

    check(model, service.shape_for(_SHAPES[model]))
