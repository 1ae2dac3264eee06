"""Typed monitoring requests: known answers for the job definitions and schedules, and the normalised job."""

from __future__ import annotations

from typing import Any

import botocore.session

from infra.control_plane.core.api_shapes import parse_request
from infra.control_plane.monitoring.monitoring_api_requests import (
    CreateModelBiasJobDefinitionRequest,
    CreateModelQualityJobDefinitionRequest,
    MonitoringScheduleRequest,
)
from infra.control_plane.monitoring.monitoring_definitions import JobDefinition, MonitoringType, job_from_inline

_ROLE = "arn:aws:iam::000000000000:role/R"
_RESOURCES = {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 20}}
_OUTPUT = {"MonitoringOutputs": [{"S3Output": {"S3Uri": "s3://b/reports", "LocalPath": "/opt/ml/processing/output"}}]}
_ENDPOINT_INPUT = {
    "EndpointName": "churn",
    "LocalPath": "/opt/ml/processing/input/endpoint",
    "InferenceAttribute": "0",
    "ProbabilityThresholdAttribute": 1,
    "StartTimeOffset": "-PT2H",
}
_MODEL_QUALITY: dict[str, Any] = {
    "JobDefinitionName": "mq",
    "ModelQualityBaselineConfig": {"ConstraintsResource": {"S3Uri": "s3://b/constraints.json"}},
    "ModelQualityAppSpecification": {
        "ImageUri": "sagestack/model-monitor",
        "ProblemType": "BinaryClassification",
        "Environment": {"publish_cloudwatch_metrics": "Disabled"},
    },
    "ModelQualityJobInput": {"EndpointInput": _ENDPOINT_INPUT, "GroundTruthS3Input": {"S3Uri": "s3://b/truth"}},
    "ModelQualityJobOutputConfig": {**_OUTPUT, "KmsKeyId": "key"},
    "JobResources": _RESOURCES,
    "NetworkConfig": {"EnableNetworkIsolation": True},
    "RoleArn": _ROLE,
    "Tags": [{"Key": "k", "Value": "v"}],
}


def test_model_quality_definition_parses_into_the_expected_job() -> None:
    request = parse_request(CreateModelQualityJobDefinitionRequest, _MODEL_QUALITY)
    assert request.wire() == _MODEL_QUALITY
    job = JobDefinition(MonitoringType.MODEL_QUALITY, "mq", "arn:mq", request, _MODEL_QUALITY).job()
    assert job.endpoint_name == "churn" and job.ground_truth_uri == "s3://b/truth"
    assert job.app.image_uri == "sagestack/model-monitor" and job.app.problem_type == "BinaryClassification"
    assert job.app.config_uri is None and dict(job.environment) == {"publish_cloudwatch_metrics": "Disabled"}
    assert job.baseline.constraints_uri == "s3://b/constraints.json" and job.baseline.statistics_uri is None
    assert job.endpoint_input is not None and job.endpoint_input.probability_threshold_attribute == 1
    assert str(job.endpoint_input.probability_threshold_attribute) == "1"  # an int stays an int, as sent
    assert (job.output.s3_uri, job.output.s3_upload_mode, job.output_kms_key) == ("s3://b/reports", "EndOfJob", "key")
    assert job.cluster.wire() == _RESOURCES["ClusterConfig"]
    assert job.stopping.max_runtime_in_seconds == 3600  # no StoppingCondition: one hour
    assert job.network is not None and job.network.wire() == {"EnableNetworkIsolation": True}
    assert job.role == _ROLE


def test_bias_definition_reads_its_config_uri_and_has_no_analyzer_members() -> None:
    params = {
        "JobDefinitionName": "bias",
        "ModelBiasAppSpecification": {"ImageUri": "sagestack/clarify", "ConfigUri": "s3://b/analysis_config.json"},
        "ModelBiasJobInput": {"EndpointInput": _ENDPOINT_INPUT, "GroundTruthS3Input": {"S3Uri": "s3://b/truth"}},
        "ModelBiasJobOutputConfig": _OUTPUT,
        "JobResources": _RESOURCES,
        "NetworkConfig": {},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "RoleArn": _ROLE,
    }
    request = parse_request(CreateModelBiasJobDefinitionRequest, params)
    job = JobDefinition(MonitoringType.MODEL_BIAS, "bias", "arn:bias", request, params).job()
    assert job.app.config_uri == "s3://b/analysis_config.json" and job.app.container_entrypoint is None
    assert job.baseline.baselining_job_name is None and job.baseline.constraints_uri is None
    assert job.stopping.max_runtime_in_seconds == 900
    assert job.network is None  # an empty NetworkConfig is not given


def test_schedule_with_an_inline_definition_parses_into_the_expected_job() -> None:
    params = {
        "MonitoringScheduleName": "hourly",
        "MonitoringScheduleConfig": {
            "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
            "MonitoringJobDefinition": {
                "BaselineConfig": {"StatisticsResource": {"S3Uri": "s3://b/statistics.json"}},
                "MonitoringInputs": [{"EndpointInput": _ENDPOINT_INPUT}],
                "MonitoringOutputConfig": _OUTPUT,
                "MonitoringResources": _RESOURCES,
                "MonitoringAppSpecification": {
                    "ImageUri": "sagestack/model-monitor",
                    "RecordPreprocessorSourceUri": "s3://b/pre.py",
                },
                "Environment": {"A": "1"},
                "RoleArn": _ROLE,
            },
        },
    }
    request = parse_request(MonitoringScheduleRequest, params)
    config = request.monitoring_schedule_config
    assert config.schedule_config is not None and config.schedule_config.schedule_expression == "cron(0 * ? * * *)"
    assert config.schedule_config.data_analysis_start_time is None
    assert config.monitoring_job_definition is not None and config.monitoring_job_definition_name is None
    job = job_from_inline(config.monitoring_job_definition)
    assert job.monitoring_type is MonitoringType.DATA_QUALITY and job.definition_name is None
    assert job.baseline.statistics_uri == "s3://b/statistics.json" and job.baseline.constraints_uri is None
    assert job.app.record_preprocessor_source_uri == "s3://b/pre.py" and job.app.problem_type is None
    assert dict(job.environment) == {"A": "1"} and job.ground_truth_uri is None and job.batch_input is None
    assert request.wire() == params


def test_one_schedule_shape_serves_create_and_update() -> None:
    service = botocore.session.get_session().get_service_model("sagemaker")
    create = service.shape_for("CreateMonitoringScheduleRequest").members
    update = service.shape_for("UpdateMonitoringScheduleRequest").members
    assert set(update) == set(create) - {"Tags"}
    assert update["MonitoringScheduleConfig"].name == create["MonitoringScheduleConfig"].name
