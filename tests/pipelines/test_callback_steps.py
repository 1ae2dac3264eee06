"""CallbackStep built with the SDK (``sagemaker.workflow.callback_step``): the token message goes to moto's SQS and
the pipeline waits for ``SendPipelineExecutionStepSuccess`` / ``Failure``."""

import json
import time

import boto3
import pytest

from tests.integration.conftest import REGION
from tests.pipelines.conftest import create, steps_of, unique, wait


@pytest.fixture(scope="module")
def sqs(stack_url):
    return boto3.client(
        "sqs", endpoint_url=stack_url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


@pytest.fixture
def queue_url(sqs):
    return sqs.create_queue(QueueName=unique("callbacks"))["QueueUrl"]


def _definition(sdk_env, queue_url, extra=()):
    from sagemaker.workflow.callback_step import CallbackOutput, CallbackOutputTypeEnum, CallbackStep
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join
    from sagemaker.workflow.parameters import ParameterString
    from sagemaker.workflow.pipeline import Pipeline

    session, _ = sdk_env
    table = ParameterString("Table", default_value="features")
    outputs = [CallbackOutput("rows", CallbackOutputTypeEnum.Integer), CallbackOutput("where")]
    wait_step = CallbackStep(name="Export", sqs_queue_url=queue_url, inputs={"table": table, "n": 3}, outputs=outputs)
    gate = ConditionStep(
        name="Enough",
        conditions=[ConditionGreaterThanOrEqualTo(left=wait_step.properties.Outputs["rows"], right=100)],
        if_steps=[],
        else_steps=[FailStep(name="TooFew", error_message=Join(on=" ", values=["rows from", table]))],
    )
    pipeline = Pipeline(name="p", steps=[wait_step, gate, *extra], parameters=[table], sagemaker_session=session)
    return pipeline.definition()


def _message(sqs, queue_url):
    for _ in range(100):
        received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
        if received:
            return json.loads(received[0]["Body"])
    raise AssertionError("no callback message arrived")


def _start(sm, sdk_env, queue_url, **parameters):
    name = create(sm, _definition(sdk_env, queue_url))
    values = [{"Name": k, "Value": v} for k, v in parameters.items()]
    return sm.start_pipeline_execution(PipelineName=name, PipelineParameters=values)["PipelineExecutionArn"]


def test_a_callback_answered_with_outputs_feeds_the_condition(sm, sdk_env, sqs, queue_url):
    arn = _start(sm, sdk_env, queue_url, Table="customers")
    body = _message(sqs, queue_url)
    assert body["arguments"] == {"table": "customers", "n": 3}
    assert body["pipelineExecutionArn"] == arn and body["status"] == "Executing"
    token = body["token"]
    assert steps_of(sm, arn)["Export"]["Metadata"]["Callback"] == {"CallbackToken": token, "SqsQueueUrl": queue_url}
    answered = sm.send_pipeline_execution_step_success(
        CallbackToken=token, OutputParameters=[{"Name": "rows", "Value": "250"}, {"Name": "where", "Value": "s3://x"}]
    )
    assert answered["PipelineExecutionArn"] == arn
    described = wait(sm, arn)
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    steps = steps_of(sm, arn)
    assert steps["Enough"]["Metadata"]["Condition"]["Outcome"] == "True"
    assert {"Name": "rows", "Value": "250"} in steps["Export"]["Metadata"]["Callback"]["OutputParameters"]
    with pytest.raises(sm.exceptions.ClientError, match="already used") as twice:
        sm.send_pipeline_execution_step_success(CallbackToken=token, OutputParameters=[])
    assert twice.value.response["Error"]["Code"] == "ConflictException"


def test_a_callback_failure_fails_the_step_with_its_reason(sm, sdk_env, sqs, queue_url):
    arn = _start(sm, sdk_env, queue_url)
    token = _message(sqs, queue_url)["token"]
    sm.send_pipeline_execution_step_failure(CallbackToken=token, FailureReason="the export job crashed")
    described = wait(sm, arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert steps_of(sm, arn)["Export"]["FailureReason"] == "the export job crashed"
    with pytest.raises(sm.exceptions.ClientError, match="already used"):
        sm.send_pipeline_execution_step_failure(CallbackToken=token, FailureReason="again")


def test_unknown_tokens_and_undeclared_outputs_are_refused(sm, sdk_env, sqs, queue_url):
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.send_pipeline_execution_step_success(CallbackToken="AAAAAAAAAA")
    with pytest.raises(sm.exceptions.ClientError) as malformed:
        sm.send_pipeline_execution_step_success(CallbackToken="bad-token!")
    assert malformed.value.response["Error"]["Code"] == "ValidationException"
    arn = _start(sm, sdk_env, queue_url)
    token = _message(sqs, queue_url)["token"]
    with pytest.raises(sm.exceptions.ClientError, match="not declared"):
        sm.send_pipeline_execution_step_success(CallbackToken=token, OutputParameters=[{"Name": "x", "Value": "1"}])
    sm.send_pipeline_execution_step_success(CallbackToken=token, OutputParameters=[{"Name": "rows", "Value": "5"}])
    described = wait(sm, arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert steps_of(sm, arn)["TooFew"]["FailureReason"] == "rows from features"


def test_an_unanswered_callback_times_out(sm, sdk_env, sqs, queue_url, stack):
    callbacks = stack.backend().pipelines.callbacks
    saved, callbacks.timeout_seconds = callbacks.timeout_seconds, 1.0
    try:
        arn = _start(sm, sdk_env, queue_url)
        token = _message(sqs, queue_url)["token"]
        described = wait(sm, arn)
    finally:
        callbacks.timeout_seconds = saved
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "callback timed out" in steps_of(sm, arn)["Export"]["FailureReason"]
    time.sleep(0.1)
    with pytest.raises(sm.exceptions.ClientError, match="already used"):
        sm.send_pipeline_execution_step_success(CallbackToken=token)


def test_a_queue_that_does_not_exist_fails_the_step(sm, sdk_env):
    name = create(sm, _definition(sdk_env, "http://localhost/123456789012/no-such-queue"))
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    described = wait(sm, arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "could not be sent" in steps_of(sm, arn)["Export"]["FailureReason"]
