"""The named shapes through boto3: ordering, parallel branches, conditions, failure, cache, retry, stop."""

import json

import pytest

from tests.pipelines.conftest import ROLE, auc_of, create, definition, processing, run, steps_of, unique, wait


def test_linear_runs_in_order_and_passes_property_files(sm, linear):
    name = create(sm, linear)
    arn, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    steps = steps_of(sm, arn)
    assert list(steps) == ["A", "B", "C"]
    assert steps["A"]["EndTime"] <= steps["B"]["StartTime"]
    assert steps["C"]["Metadata"]["ProcessingJob"]["Arn"].startswith("arn:aws:sagemaker:us-east-1:")
    job = steps["C"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    assert sm.describe_processing_job(ProcessingJobName=job)["Environment"]["AUC"] == "0.8"


def test_fan_out_fan_in_runs_branches_in_parallel(sm, fan_out_fan_in):
    name = create(sm, fan_out_fan_in)
    arn, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    steps = steps_of(sm, arn)
    fans = [steps[f"Fan{i}"] for i in range(3)]
    assert max(s["StartTime"] for s in fans) < min(s["EndTime"] for s in fans)  # overlapping, not sequential
    assert all(s["EndTime"] <= steps["Sink"]["StartTime"] for s in fans)


def test_parallelism_limit_of_one_serialises_branches(sm, fan_out_fan_in):
    name = create(sm, fan_out_fan_in, ParallelismConfiguration={"MaxParallelExecutionSteps": 1})
    arn, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Succeeded"
    fans = sorted((steps_of(sm, arn)[f"Fan{i}"] for i in range(3)), key=lambda s: s["StartTime"])
    assert fans[0]["EndTime"] <= fans[1]["StartTime"] and fans[1]["EndTime"] <= fans[2]["StartTime"]


@pytest.mark.parametrize(
    ("auc", "status", "ran", "skipped"), [("0.9", "Succeeded", "Good", "TooLow"), ("0.5", "Failed", "TooLow", "Good")]
)
def test_condition_branches(sm, condition_branches, auc, status, ran, skipped):
    name = create(sm, condition_branches)
    arn, described = run(sm, name, PipelineParameters=[{"Name": "Auc", "Value": auc}])
    assert described["PipelineExecutionStatus"] == status
    steps = steps_of(sm, arn)
    assert steps["Gate"]["Metadata"]["Condition"]["Outcome"] == ("True" if auc == "0.9" else "False")
    assert ran in steps and skipped not in steps
    if status == "Failed":
        assert steps["TooLow"]["Metadata"]["Fail"]["ErrorMessage"] == "AUC 0.5 below threshold"
        assert "AUC 0.5 below threshold" in described["FailureReason"]
        with pytest.raises(sm.exceptions.ClientError, match="Fail step"):
            sm.retry_pipeline_execution(PipelineExecutionArn=arn)


def test_failing_branch_lets_running_steps_finish_and_starts_nothing_downstream(sm, failing_branch):
    name = create(sm, failing_branch)
    arn, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "Step Broken failed" in described["FailureReason"] and "bad input column" in described["FailureReason"]
    steps = steps_of(sm, arn)
    assert steps["Slow"]["StepStatus"] == "Succeeded"
    assert steps["Broken"]["StepStatus"] == "Failed" and "bad input column" in steps["Broken"]["FailureReason"]
    assert "After" not in steps
    summaries = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert summaries[0]["PipelineExecutionStatus"] == "Failed"


def test_cached_rerun_reuses_outputs(sm, code_uri, bucket):
    cached = {"CacheConfig": {"Enabled": True, "ExpireAfter": "PT1H"}}
    body = definition(
        [
            processing("Cached", code_uri, bucket, **cached),
            processing("Uncached", code_uri, bucket, env={"AUC": auc_of("Cached")}),
        ]
    )
    name = create(sm, body)
    first, _ = run(sm, name)
    second, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Succeeded"
    steps = steps_of(sm, second)
    assert steps["Cached"]["CacheHitResult"]["SourcePipelineExecutionArn"] == first
    assert steps["Cached"]["Metadata"] == steps_of(sm, first)["Cached"]["Metadata"]
    assert "CacheHitResult" not in steps["Uncached"]


def test_retry_policy_retries_internal_errors(sm, code_uri, bucket):
    policy = {
        "RetryPolicies": [{"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 1, "MaxAttempts": 2}]
    }
    marker = f"{bucket}/pipelines/flags/{unique('flaky')}"  # the first attempt writes it, then fails
    name = create(sm, definition([processing("Flaky", code_uri, bucket, env={"FLAKY_MARKER": marker}, **policy)]))
    arn, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    assert steps_of(sm, arn)["Flaky"]["AttemptCount"] == 2


def test_retry_execution_resumes_from_the_failed_step(sm, code_uri, bucket, s3):
    fail_flag = f"s3://{bucket}/pipelines/flags/{unique('f')}"
    body = definition(
        [
            processing("First", code_uri, bucket),
            processing("Second", code_uri, bucket, env={"FAIL": {"Get": "Parameters.Fail"}}, DependsOn=["First"]),
        ],
        parameters=[{"Name": "Fail", "Type": "String", "DefaultValue": "boom"}],
    )
    name = create(sm, body)
    arn, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Failed", fail_flag
    first_job = steps_of(sm, arn)["First"]["Metadata"]
    # the parameter is fixed for the execution, so the retry fails again, but First is not rerun
    assert sm.retry_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionArn"] == arn
    described = wait(sm, arn)
    steps = steps_of(sm, arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert steps["First"]["Metadata"] == first_job and steps["Second"]["StepStatus"] == "Failed"


def test_stop_stops_the_running_job(sm, code_uri, bucket):
    name = create(sm, definition([processing("Sleepy", code_uri, bucket, env={"SLEEP": "60"})]))
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    while "Sleepy" not in steps_of(sm, arn) or "Metadata" not in steps_of(sm, arn)["Sleepy"]:
        pass
    sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    described = wait(sm, arn, timeout=60)
    assert described["PipelineExecutionStatus"] == "Stopped"
    step = steps_of(sm, arn)["Sleepy"]
    assert step["StepStatus"] == "Stopped"
    job = sm.describe_processing_job(ProcessingJobName=step["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1])
    assert job["ProcessingJobStatus"] == "Stopped"


def test_parameters_are_coerced_and_listed(sm, condition_branches):
    name = create(sm, condition_branches)
    arn, _ = run(sm, name, PipelineParameters=[{"Name": "Threshold", "Value": "0.95"}])
    listed = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in listed} == {"Auc": "0.9", "Threshold": "0.95"}
    with pytest.raises(sm.exceptions.ClientError, match="Threshold: value 'high' is not a valid Float"):
        sm.start_pipeline_execution(PipelineName=name, PipelineParameters=[{"Name": "Threshold", "Value": "high"}])


def test_definition_from_s3_and_describe_list_update_delete(sm, s3, bucket, linear):
    s3.put_object(Bucket=bucket, Key="pipelines/defs/linear.json", Body=linear.encode())
    name = unique("pl")
    location = {"Bucket": bucket, "ObjectKey": "pipelines/defs/linear.json"}
    arn = sm.create_pipeline(PipelineName=name, PipelineDefinitionS3Location=location, RoleArn=ROLE)["PipelineArn"]
    assert arn.endswith(f":pipeline/{name.lower()}")
    assert json.loads(sm.describe_pipeline(PipelineName=name)["PipelineDefinition"]) == json.loads(linear)
    assert sm.update_pipeline(PipelineName=name, PipelineDescription="d")["PipelineVersionId"] == 1
    assert sm.update_pipeline(PipelineName=name, PipelineDefinition=linear)["PipelineVersionId"] == 2
    names = [p["PipelineName"] for p in sm.list_pipelines(PipelineNamePrefix=name)["PipelineSummaries"]]
    assert names == [name]
    with pytest.raises(sm.exceptions.ClientError, match="already exists"):
        sm.create_pipeline(PipelineName=name, PipelineDefinition=linear, RoleArn=ROLE)
    sm.delete_pipeline(PipelineName=name)
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_pipeline(PipelineName=name)
