"""Typed pipeline requests: the CreatePipeline / UpdatePipeline / StartPipelineExecution envelopes."""

from __future__ import annotations

from infra.control_plane.core.api_shapes import parse_request
from infra.control_plane.pipeline_engine.pipeline_requests import (
    CreatePipelineRequest,
    StartPipelineExecutionRequest,
    UpdatePipelineRequest,
)


def test_create_pipeline_request_parses_its_envelope() -> None:
    params = {
        "PipelineName": "credit-risk",
        "PipelineDefinitionS3Location": {"Bucket": "b", "ObjectKey": "defs/p.json"},
        "RoleArn": "arn:aws:iam::000000000000:role/R",
        "ParallelismConfiguration": {"MaxParallelExecutionSteps": 2},
        "ClientRequestToken": "token-1",
        "Tags": [{"Key": "k", "Value": "v"}],
    }
    request = parse_request(CreatePipelineRequest, params)
    assert request.pipeline_definition is None and request.pipeline_display_name is None
    assert request.pipeline_definition_s3_location is not None
    assert request.pipeline_definition_s3_location.uri == "s3://b/defs/p.json"
    assert request.parallelism_configuration is not None
    assert request.parallelism_configuration.max_parallel_execution_steps == 2
    assert request.parallelism_configuration.wire() == {"MaxParallelExecutionSteps": 2}
    assert request.wire() == params


def test_update_pipeline_request_leaves_unsent_members_none() -> None:
    request = parse_request(UpdatePipelineRequest, {"PipelineName": "p", "PipelineDescription": "d"})
    assert request.pipeline_description == "d"
    assert (request.role_arn, request.pipeline_definition, request.parallelism_configuration) == (None, None, None)


def test_start_request_parses_parameters_in_order() -> None:
    params = {
        "PipelineName": "p",
        "PipelineVersionId": 3,
        "PipelineParameters": [{"Name": "Threshold", "Value": "0.5"}, {"Name": "Mode", "Value": "fast"}],
        "PipelineExecutionDisplayName": "run",
    }
    request = parse_request(StartPipelineExecutionRequest, params)
    assert request.pipeline_version_id == 3
    assert [(p.name, p.value) for p in request.pipeline_parameters] == [("Threshold", "0.5"), ("Mode", "fast")]
    assert request.pipeline_execution_description is None and request.parallelism_configuration is None
