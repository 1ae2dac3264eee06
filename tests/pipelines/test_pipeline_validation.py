"""Invalid definitions are rejected at CreatePipeline with a ValidationException naming the step and the path."""

import json

import pytest

from tests.pipelines.conftest import ROLE, definition, processing, run, steps_of, unique


def _error(sm, body):
    with pytest.raises(sm.exceptions.ClientError) as info:
        sm.create_pipeline(PipelineName=unique("bad"), PipelineDefinition=body, RoleArn=ROLE)
    return info.value.response["Error"]


def _with_env(code_uri, bucket, name, value, **extra):
    return processing(name, code_uri, bucket, env={"X": value}, **extra)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s[1].update(DependsOn=["Nope"]), "Step B: DependsOn names unknown step 'Nope'"),
        (
            lambda s: [s[0].update(DependsOn=["B"]), s[1].update(DependsOn=["A"])],
            "Cycle detected in pipeline step graph",
        ),
        (lambda s: s[1]["Arguments"]["Environment"].update(X={"Get": "Parameters.Missing"}), "undeclared parameter"),
        (
            lambda s: s[1]["Arguments"]["Environment"].update(X={"Get": "Steps.A.ProcessingOutputConfig.Nope"}),
            "Step B: {'Get': 'Steps.A.ProcessingOutputConfig.Nope'}: 'ProcessingOutputConfig.Nope' is not a property",
        ),
        (
            lambda s: s[1]["Arguments"]["Environment"].update(
                X={"Std:JsonGet": {"PropertyFile": {"Get": "Steps.A.PropertyFiles.Other"}, "Path": "a"}}
            ),
            "step A declares no property file 'Other'",
        ),
        (lambda s: s[1].update(Type="AutoML"), "Step B: step type AutoML is not supported locally yet"),
        (lambda s: s[1].update(CacheConfig={"Enabled": True, "ExpireAfter": "soon"}), "Step B: CacheConfig"),
    ],
)
def test_bad_definitions_are_rejected(sm, code_uri, bucket, mutate, message):
    steps = [processing("A", code_uri, bucket), _with_env(code_uri, bucket, "B", "1")]
    mutate(steps)
    error = _error(sm, definition(steps))
    assert error["Code"] == "ValidationException"
    assert message in error["Message"]


def test_property_paths_accept_list_selection_by_name(sm, code_uri, bucket):
    value = {"Get": "Steps.A.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}
    body = definition([processing("A", code_uri, bucket), _with_env(code_uri, bucket, "B", value)])
    name = unique("ok")
    sm.create_pipeline(PipelineName=name, PipelineDefinition=body, RoleArn=ROLE)
    # accepted at Create, and resolved at run time: B's job gets the URI of A's output selected by its name
    arn, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    jobs = {
        step: sm.describe_processing_job(ProcessingJobName=s["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1])
        for step, s in steps_of(sm, arn).items()
    }
    [output] = jobs["A"]["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == "out" and output["S3Output"]["S3Uri"].endswith("/A")
    assert jobs["B"]["Environment"]["X"] == output["S3Output"]["S3Uri"]


def test_not_json_and_wrong_version(sm):
    assert "not valid JSON" in _error(sm, "{nope")["Message"]
    assert "Version" in _error(sm, json.dumps({"Version": "2019-01-01", "Steps": []}))["Message"]
