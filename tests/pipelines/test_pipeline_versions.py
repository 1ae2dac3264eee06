"""Pipeline versions (ListPipelineVersions, UpdatePipelineVersion, PipelineVersionId) and custom job name prefixes
(the SDK's ``PipelineDefinitionConfig(use_custom_job_prefix=True)``) through boto3 and the SDK."""

import json

import botocore.exceptions
import pytest

from tests.pipelines.conftest import ROLE, create, definition, processing, run, steps_of, unique


def test_each_definition_update_is_a_new_version_an_execution_can_run(sm, code_uri, bucket):
    first = definition([processing("A", code_uri, bucket)])
    second = definition([processing("A", code_uri, bucket), processing("B", code_uri, bucket, DependsOn=["A"])])
    name = create(sm, first)
    assert sm.update_pipeline(PipelineName=name, PipelineDefinition=second)["PipelineVersionId"] == 2
    assert sm.update_pipeline(PipelineName=name, PipelineDescription="only metadata")["PipelineVersionId"] == 2

    listed = sm.list_pipeline_versions(PipelineName=name)["PipelineVersionSummaries"]
    assert [v["PipelineVersionId"] for v in listed] == [2, 1]
    assert all("LastExecutionPipelineExecutionArn" not in v for v in listed)
    ascending = sm.list_pipeline_versions(PipelineName=name, SortOrder="Ascending", MaxResults=1)
    assert [v["PipelineVersionId"] for v in ascending["PipelineVersionSummaries"]] == [1]
    assert "NextToken" in ascending

    old, described = run(sm, name, PipelineVersionId=1)
    assert described["PipelineExecutionStatus"] == "Succeeded"
    assert described["PipelineVersionId"] == 1
    assert set(steps_of(sm, old)) == {"A"}
    assert sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=old)["PipelineDefinition"] == first
    latest, described = run(sm, name)
    assert described["PipelineVersionId"] == 2
    assert set(steps_of(sm, latest)) == {"A", "B"}

    by_version = {
        v["PipelineVersionId"]: v for v in sm.list_pipeline_versions(PipelineName=name)["PipelineVersionSummaries"]
    }
    assert by_version[1]["LastExecutionPipelineExecutionArn"] == old
    assert by_version[2]["LastExecutionPipelineExecutionArn"] == latest
    assert json.loads(sm.describe_pipeline(PipelineName=name, PipelineVersionId=1)["PipelineDefinition"]) == json.loads(
        first
    )


def test_a_version_gets_a_display_name_and_description(sm, code_uri, bucket):
    name = create(sm, definition([processing("A", code_uri, bucket)]))
    arn = sm.describe_pipeline(PipelineName=name)["PipelineArn"]
    answer = sm.update_pipeline_version(
        PipelineArn=arn, PipelineVersionId=1, PipelineVersionDisplayName="baseline", PipelineVersionDescription="v1"
    )
    assert answer == {"PipelineArn": arn, "PipelineVersionId": 1, "ResponseMetadata": answer["ResponseMetadata"]}
    summary = sm.list_pipeline_versions(PipelineName=name)["PipelineVersionSummaries"][0]
    assert (summary["PipelineVersionDisplayName"], summary["PipelineVersionDescription"]) == ("baseline", "v1")
    described = sm.describe_pipeline(PipelineName=name)
    assert (described["PipelineVersionDisplayName"], described["PipelineVersionDescription"]) == ("baseline", "v1")


@pytest.mark.parametrize("operation", ["describe", "update_version", "start", "list_unknown_pipeline"])
def test_unknown_versions_and_pipelines_are_errors(sm, code_uri, bucket, operation):
    name = create(sm, definition([processing("A", code_uri, bucket)]))
    arn = sm.describe_pipeline(PipelineName=name)["PipelineArn"]
    calls = {
        "describe": (lambda: sm.describe_pipeline(PipelineName=name, PipelineVersionId=7), "ResourceNotFound"),
        "update_version": (
            lambda: sm.update_pipeline_version(PipelineArn=arn, PipelineVersionId=7, PipelineVersionDisplayName="x"),
            "ResourceNotFound",
        ),
        "start": (lambda: sm.start_pipeline_execution(PipelineName=name, PipelineVersionId=7), "ValidationException"),
        "list_unknown_pipeline": (lambda: sm.list_pipeline_versions(PipelineName=unique("none")), "ResourceNotFound"),
    }
    call, code = calls[operation]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == code


def test_a_job_name_in_the_arguments_is_the_prefix_of_each_runs_job(sm, code_uri, bucket):
    step = processing("Prep", code_uri, bucket)
    step["Arguments"]["ProcessingJobName"] = "Nightly-Prep"
    name = create(sm, definition([step]))
    jobs = []
    for _ in range(2):
        arn, described = run(sm, name)
        assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
        job_arn = steps_of(sm, arn)["Prep"]["Metadata"]["ProcessingJob"]["Arn"]
        assert job_arn.split("/")[-1].startswith(f"nightly-prep-{arn.rsplit('/', 1)[-1]}-")
        jobs.append(job_arn)
    assert jobs[0] != jobs[1]


def test_the_sdk_keeps_the_custom_prefix_in_the_definition(sm, sdk_env):
    from sagemaker.processing import ProcessingInput, ScriptProcessor
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_definition_config import PipelineDefinitionConfig
    from sagemaker.workflow.steps import ProcessingStep

    from tests.pipelines.conftest import SKLEARN_IMAGE

    session, bucket = sdk_env
    processor = ScriptProcessor(
        image_uri=SKLEARN_IMAGE,
        command=["python3"],
        role=ROLE,
        instance_count=1,
        instance_type="ml.m5.large",
        base_job_name="custom-prefix",
        sagemaker_session=session,
    )
    code = session.upload_string_as_file_body("print('ok')\n", bucket, f"{unique('code')}/noop.py")
    step = ProcessingStep(
        name="Noop",
        processor=processor,
        code=code,
        inputs=[ProcessingInput(source=code, destination="/opt/ml/processing/extra")],
    )
    pipeline = Pipeline(
        name=unique("prefix"),
        steps=[step],
        sagemaker_session=session,
        pipeline_definition_config=PipelineDefinitionConfig(use_custom_job_prefix=True),
    )
    assert json.loads(pipeline.definition())["Steps"][0]["Arguments"]["ProcessingJobName"] == "custom-prefix"
    pipeline.create(role_arn=ROLE)
    execution = pipeline.start()
    execution.wait(delay=1, max_attempts=300)
    job_arn = steps_of(sm, execution.arn)["Noop"]["Metadata"]["ProcessingJob"]["Arn"]
    assert job_arn.split("/")[-1].startswith("custom-prefix-")
