"""EMRStep built with the SDK (``sagemaker.workflow.emr_step``): Spark work on the stack's EMR, a real local cluster."""

import json
import time

import boto3

from tests.integration.conftest import REGION
from tests.pipelines.conftest import create, run, steps_of, unique, wait

TIMEOUT = 1800  # cluster JVMs on a shared machine


def _emr(sm):
    return boto3.client(
        "emr",
        endpoint_url=sm.meta.endpoint_url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _pipeline(sdk_env, steps, parameters=()):
    from sagemaker.workflow.pipeline import Pipeline

    session, _ = sdk_env
    return Pipeline(name="p", steps=steps, parameters=list(parameters), sagemaker_session=session).definition()


def _on_cluster(name, cluster_id, config):
    from sagemaker.workflow.emr_step import EMRStep

    return EMRStep(name=name, display_name=name, description="", cluster_id=cluster_id, step_config=config)


def _config(app_uri, bucket, key, mode="ok"):
    from sagemaker.workflow.emr_step import EMRStepConfig

    return EMRStepConfig(jar="command-runner.jar", args=["spark-submit", app_uri, bucket, key, mode])


def test_an_emr_step_on_an_existing_cluster_feeds_a_condition(sm, s3, sdk_env, emr_cluster, emr_app_uri, bucket):
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals
    from sagemaker.workflow.emr_step import EMRStep
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join

    key = Join(on="/", values=["emr-steps", ExecutionVariables.PIPELINE_EXECUTION_ID, "squares.json"])
    squares = EMRStep(
        name="Squares",
        display_name="Squares",
        description="sum of squares on Spark",
        cluster_id=emr_cluster,
        step_config=_config(emr_app_uri, bucket, key),
    )
    gate = ConditionStep(
        name="Done",
        conditions=[ConditionEquals(left=squares.properties.Status.State, right="COMPLETED")],
        if_steps=[],
        else_steps=[FailStep(name="NotDone", error_message="the EMR step did not complete")],
    )
    arn, described = run(sm, create(sm, _pipeline(sdk_env, [squares, gate])), timeout=TIMEOUT)
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    execution_id = arn.rsplit("/", 1)[-1]
    body = s3.get_object(Bucket=bucket, Key=f"emr-steps/{execution_id}/squares.json")["Body"].read()
    assert json.loads(body) == {"total": sum(x * x for x in range(100))}
    step = steps_of(sm, arn)["Squares"]
    metadata = step["Metadata"]["EMR"]
    assert metadata["ClusterId"] == emr_cluster and metadata["StepName"] == "Squares"
    emr = _emr(sm)
    ran = emr.describe_step(ClusterId=emr_cluster, StepId=metadata["StepId"])["Step"]
    assert ran["Status"]["State"] == "COMPLETED" and ran["ActionOnFailure"] == "CONTINUE"
    assert steps_of(sm, arn)["Done"]["Metadata"]["Condition"]["Outcome"] == "True"


def test_a_failing_spark_app_fails_the_step_with_the_drivers_error(sm, sdk_env, emr_cluster, emr_app_uri, bucket):
    broken = _on_cluster("Broken", emr_cluster, _config(emr_app_uri, bucket, "emr-steps/missing", mode="fail"))
    arn, described = run(sm, create(sm, _pipeline(sdk_env, [broken])), timeout=TIMEOUT)
    assert described["PipelineExecutionStatus"] == "Failed"
    reason = steps_of(sm, arn)["Broken"]["FailureReason"]
    assert "RuntimeError: the EMR app found no input for emr-steps/missing" in reason
    emr = _emr(sm)
    assert emr.describe_cluster(ClusterId=emr_cluster)["Cluster"]["Status"]["State"] == "WAITING"  # kept alive


def test_an_emr_step_with_cluster_config_creates_and_terminates_its_cluster(sm, s3, sdk_env, emr_app_uri, bucket):
    from sagemaker.workflow.emr_step import EMRStep

    key = unique("emr-steps/own") + ".json"
    cluster_config = {
        "ReleaseLabel": "emr-7.5.0",
        "Applications": [{"Name": "Spark"}],
        "Instances": {
            "InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
                {"InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": 2},
            ]
        },
        "JobFlowRole": "EMR_EC2_DefaultRole",
        "ServiceRole": "EMR_DefaultRole",
    }
    own = EMRStep(
        name="OwnCluster",
        display_name="OwnCluster",
        description="",
        cluster_id=None,
        cluster_config=cluster_config,
        step_config=_config(emr_app_uri, bucket, key),
    )
    arn, described = run(sm, create(sm, _pipeline(sdk_env, [own])), timeout=TIMEOUT)
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["total"] == 328350
    cluster_id = steps_of(sm, arn)["OwnCluster"]["Metadata"]["EMR"]["ClusterId"]
    emr = _emr(sm)
    while True:  # the step ends before its cluster has finished terminating
        cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
        if cluster["Status"]["State"].startswith("TERMINATED"):
            break
        time.sleep(0.1)
    assert cluster["Status"]["State"] == "TERMINATED"
    assert cluster["Status"]["StateChangeReason"]["Code"] == "ALL_STEPS_COMPLETED"
    assert cluster["Name"] == f"sagemaker-OwnCluster-{arn.rsplit('/', 1)[-1]}"


def test_an_emr_step_property_path_is_checked_at_create(sm, sdk_env, emr_app_uri, bucket):
    body = {
        "Version": "2020-12-01",
        "Steps": [
            {
                "Name": "E",
                "Type": "EMR",
                "Arguments": {
                    "ClusterId": "j-1",
                    "StepConfig": {
                        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", emr_app_uri]}
                    },
                },
            },
            {"Name": "F", "Type": "Fail", "Arguments": {"ErrorMessage": {"Get": "Steps.E.Status.NoSuchField"}}},
        ],
    }
    import pytest
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="is not a property of an EMR step"):
        create(sm, json.dumps(body))
    body["Steps"][1]["Arguments"]["ErrorMessage"] = {"Get": "Steps.E.Status.FailureDetails.Reason"}
    create(sm, json.dumps(body))


def test_stopping_the_execution_cancels_the_running_emr_step(sm, sdk_env, emr_cluster, emr_app_uri, bucket):
    slow = _on_cluster("Slow", emr_cluster, _config(emr_app_uri, bucket, "emr-steps/slow", mode="sleep"))
    arn = sm.start_pipeline_execution(PipelineName=create(sm, _pipeline(sdk_env, [slow])))["PipelineExecutionArn"]
    emr = _emr(sm)
    while True:  # the EMR step runs (its driver is up) before the stop
        metadata = steps_of(sm, arn).get("Slow", {}).get("Metadata", {}).get("EMR")
        if (
            metadata
            and emr.describe_step(ClusterId=emr_cluster, StepId=metadata["StepId"])["Step"]["Status"]["State"]
            == "RUNNING"
        ):
            break
        time.sleep(0.1)
    sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    described = wait(sm, arn, timeout=TIMEOUT)
    assert described["PipelineExecutionStatus"] == "Stopped"
    assert steps_of(sm, arn)["Slow"]["StepStatus"] == "Stopped"
    step = emr.describe_step(ClusterId=emr_cluster, StepId=metadata["StepId"])["Step"]
    assert step["Status"]["State"] == "CANCELLED"
    assert emr.describe_cluster(ClusterId=emr_cluster)["Cluster"]["Status"]["State"] == "WAITING"
