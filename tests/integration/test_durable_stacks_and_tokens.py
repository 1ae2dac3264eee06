"""A durable stack (issue 18): CloudFormation stacks, client request tokens and the pipeline step cache survive a
`serve` restart, through boto3 against a subprocess."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE
from tests.integration.helpers import training_request
from tests.integration.test_durable_stack import BUCKET, ServedStack

TEMPLATE = {
    "Parameters": {"Suffix": {"Type": "String"}},
    "Resources": {
        "Data": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": "durable-cfn-${Suffix}"}}},
        "Runner": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": {"Fn::Sub": "durable-cfn-runner-${Suffix}"},
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
            },
        },
    },
    "Outputs": {
        "BucketName": {"Value": {"Ref": "Data"}, "Export": {"Name": "durable-cfn-bucket"}},
        "RoleArn": {"Value": {"Fn::GetAtt": ["Runner", "Arn"]}},
    },
}


def _until(predicate):
    while not (value := predicate()):
        time.sleep(0.1)
    return value


def test_a_cloudformation_stack_survives_a_restart_and_can_still_be_deleted(tmp_path):
    stack = ServedStack(tmp_path / "state")
    try:
        cfn = stack.client("cloudformation")
        stack_id = cfn.create_stack(
            StackName="durable-cfn",
            TemplateBody=json.dumps(TEMPLATE),
            Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a1"}],
            Tags=[{"Key": "team", "Value": "ml"}],
        )["StackId"]
        before = cfn.describe_stacks(StackName="durable-cfn")["Stacks"][0]
        assert before["StackStatus"] == "CREATE_COMPLETE"
        events_before = cfn.describe_stack_events(StackName="durable-cfn")["StackEvents"]
        time.sleep(1.5)  # past one mirror sync (a clean stop writes it anyway)
    finally:
        stack.stop()

    stack = ServedStack(tmp_path / "state")
    try:
        cfn, s3, iam = stack.client("cloudformation"), stack.client("s3"), stack.client("iam")
        after = cfn.describe_stacks(StackName="durable-cfn")["Stacks"][0]
        assert after["StackId"] == stack_id and after["StackStatus"] == "CREATE_COMPLETE"
        assert after["Parameters"] == [{"ParameterKey": "Suffix", "ParameterValue": "a1"}]
        assert after["Tags"] == [{"Key": "team", "Value": "ml"}]
        assert sorted(after["Outputs"], key=lambda o: o["OutputKey"]) == sorted(
            before["Outputs"], key=lambda o: o["OutputKey"]
        )
        assert after["CreationTime"] == before["CreationTime"]
        resources = cfn.describe_stack_resources(StackName="durable-cfn")["StackResources"]
        assert {(r["LogicalResourceId"], r["PhysicalResourceId"]) for r in resources} == {
            ("Data", "durable-cfn-a1"),
            ("Runner", "durable-cfn-runner-a1"),
        }
        events_after = cfn.describe_stack_events(StackName="durable-cfn")["StackEvents"]
        assert [(e["EventId"], e["ResourceStatus"]) for e in events_after] == [
            (e["EventId"], e["ResourceStatus"]) for e in events_before
        ]
        assert [e["Name"] for e in cfn.list_exports()["Exports"]] == ["durable-cfn-bucket"]
        body = cfn.get_template(StackName="durable-cfn")["TemplateBody"]  # botocore parses a JSON body
        assert (json.loads(body) if isinstance(body, str) else json.loads(json.dumps(body))) == TEMPLATE
        cfn.delete_stack(StackName="durable-cfn")  # deletes the resources it created before the restart
        with pytest.raises(ClientError):
            s3.head_bucket(Bucket="durable-cfn-a1")
        with pytest.raises(ClientError):
            iam.get_role(RoleName="durable-cfn-runner-a1")
        assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    finally:
        stack.stop()
    stack = ServedStack(tmp_path / "state")
    try:
        with pytest.raises(ClientError):
            stack.client("cloudformation").describe_stacks(StackName="durable-cfn")
    finally:
        stack.stop()


def _cached_pipeline():
    arguments = training_request("unused", BUCKET)
    arguments.pop("TrainingJobName")
    step = {
        "Name": "Train",
        "Type": "Training",
        "Arguments": arguments,
        "CacheConfig": {"Enabled": True, "ExpireAfter": "P1D"},
    }
    return json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": [step]})


def _finished(sm, execution):
    status = sm.describe_pipeline_execution(PipelineExecutionArn=execution)["PipelineExecutionStatus"]
    return status if status not in ("Executing", "Stopping") else None


def test_request_tokens_and_the_step_cache_survive_a_restart(tmp_path):
    token = "durable-token-" + "0" * 20
    stack = ServedStack(tmp_path / "state")
    try:
        s3, sm = stack.client("s3"), stack.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/train/part.csv", Body=b"1,0.5\n")
        created = sm.create_pipeline(
            PipelineName="cached", PipelineDefinition=_cached_pipeline(), RoleArn=ROLE, ClientRequestToken=token
        )["PipelineArn"]
        first = sm.start_pipeline_execution(PipelineName="cached")["PipelineExecutionArn"]
        assert _until(lambda: _finished(sm, first)) == "Succeeded"
        time.sleep(1.0)  # past one state flush (a clean stop writes it anyway)
    finally:
        stack.stop()

    stack = ServedStack(tmp_path / "state")
    try:
        sm = stack.client("sagemaker")
        again = sm.create_pipeline(
            PipelineName="cached", PipelineDefinition=_cached_pipeline(), RoleArn=ROLE, ClientRequestToken=token
        )
        assert again["PipelineArn"] == created  # the first answer again, not "already exists"
        with pytest.raises(ClientError) as conflict:
            sm.create_pipeline(
                PipelineName="other", PipelineDefinition=_cached_pipeline(), RoleArn=ROLE, ClientRequestToken=token
            )
        assert conflict.value.response["Error"]["Code"] == "ConflictException"
        second = sm.start_pipeline_execution(PipelineName="cached")["PipelineExecutionArn"]
        assert _until(lambda: _finished(sm, second)) == "Succeeded"
        steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=second)["PipelineExecutionSteps"]
        assert steps[0]["CacheHitResult"]["SourcePipelineExecutionArn"] == first
    finally:
        stack.stop()


def test_a_second_stack_of_the_same_process_restores_without_errors_or_duplicate_log_events(tmp_path, caplog):
    """moto is per process: a stack started again in-process on the same data dir finds the first one's resources
    (benchmarks and tests do this); its restore keeps them as they are instead of failing on each or doubling the
    log events."""
    import logging
    import uuid

    import boto3

    from infra.config import StackSettings
    from infra.control_plane.server import LocalStack

    group, stream = f"/sagestack/test/mirror-{uuid.uuid4().hex[:8]}", "one"
    first = LocalStack(StackSettings(data_dir=tmp_path, port=0, persistence=True))
    logs = boto3.client("logs", endpoint_url=first.start(), region_name="us-east-1")
    try:
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now + i, "message": f"line {i}"} for i in range(3)]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    finally:
        first.stop()
    second = LocalStack(StackSettings(data_dir=tmp_path, port=0, persistence=True))
    with caplog.at_level("ERROR", logger="infra.control_plane.core.durable.moto_mirror"):
        logs = boto3.client("logs", endpoint_url=second.start(), region_name="us-east-1")
    try:
        got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
        assert [event["message"] for event in got] == ["line 0", "line 1", "line 2"]
        failures = [r for r in caplog.records if r.name.endswith("moto_mirror") and r.levelno >= logging.ERROR]
        assert not failures, caplog.text
    finally:
        second.stop()
