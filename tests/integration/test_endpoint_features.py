"""Endpoint features the examples use, through boto3 (docs/deploy.md): inference pipelines (several Containers in
series, endpoint and batch transform), serverless variants (validation, cold start, MaxConcurrency, memory),
asynchronous inference (InvokeEndpointAsync, S3 output and failure, SNS notifications) and their bad input. The
multi-model endpoint and the SDK's classes run with real containers in test_endpoint_features_sdk.py."""

import json
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.conftest import FAKE_IMAGE, REGION, ROLE, unique
from tests.integration.helpers import error_code, training_request, wait_endpoint, wait_training, wait_transform


@pytest.fixture(scope="module")
def model_data(sm, bucket):
    name = unique("feat-train")
    sm.create_training_job(**training_request(name, bucket))
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Completed"
    return described["ModelArtifacts"]["S3ModelArtifacts"]


def _container(model_data, tag, **extra):
    environment = {"VARIANT_TAG": tag, "FAKE_ECHO": "1"}
    return {"Image": FAKE_IMAGE, "ModelDataUrl": model_data, "Environment": environment, **extra}


def _endpoint(sm, model_name, variant=None, **config):
    variant = variant or {"InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    config_name, name = unique("feat-cfg"), unique("feat-ep")
    sm.create_endpoint_config(
        EndpointConfigName=config_name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": model_name, **variant}],
        **config,
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
    described = wait_endpoint(sm, name)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return name


@pytest.fixture(scope="module")
def pipeline_model(sm, model_data):
    name = unique("feat-pipeline")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        Containers=[_container(model_data, "first"), _container(model_data, "second")],
    )
    return name


def test_an_inference_pipeline_passes_each_answer_to_the_next_container(sm, smr, pipeline_model):
    endpoint = _endpoint(sm, pipeline_model)
    try:
        response = smr.invoke_endpoint(
            EndpointName=endpoint, Body=b"1,2,3", ContentType="text/csv", Accept="application/x-final"
        )
        second = json.loads(response["Body"].read())
        first = json.loads(second["input"])
        # the first container got the caller's request, without the caller's Accept (it answers its own default)
        assert (first["variant"], first["content_type"], first["accept"], first["input"]) == (
            "first",
            "text/csv",
            None,
            "1,2,3",
        )
        # the second got the first's answer as its request, typed as the first answered, and the caller's Accept
        assert (second["variant"], second["content_type"], second["accept"]) == (
            "second",
            "application/json",
            "application/x-final",
        )
        assert second["size"] == len(second["input"].encode())
        described = sm.describe_endpoint(EndpointName=endpoint)
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


def test_a_pipeline_container_error_names_the_container(sm, smr, model_data):
    name = unique("feat-pipeline-err")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        Containers=[_container(model_data, "first"), _container(model_data, "second", ContainerHostname="scorer")],
    )
    endpoint = _endpoint(sm, name)
    try:
        with pytest.raises(ClientError) as raised:  # "error" makes the first container answer 400
            smr.invoke_endpoint(EndpointName=endpoint, Body=b"error", ContentType="text/csv")
        assert error_code(raised) == "ModelError"
        assert raised.value.response["OriginalStatusCode"] == 400
        assert "from container-1 with message" in raised.value.response["Error"]["Message"]
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


def test_batch_transform_runs_the_pipeline_model(sm, s3, bucket, pipeline_model):
    prefix = unique("feat-transform")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/in/rows.csv", Body=b"1,2\n3,4\n")
    name = unique("feat-transform")
    sm.create_transform_job(
        TransformJobName=name,
        ModelName=pipeline_model,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{prefix}/in"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={
            "S3OutputPath": f"s3://{bucket}/{prefix}/out",
            "Accept": "application/x-final",
            "AssembleWith": "Line",
        },
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        BatchStrategy="SingleRecord",
    )
    described = wait_transform(sm, name)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    out = s3.get_object(Bucket=bucket, Key=f"{prefix}/out/rows.csv.out")["Body"].read().decode()
    answers = [json.loads(line) for line in out.strip().split("\n")]
    assert [json.loads(a["input"])["input"].strip() for a in answers] == ["1,2", "3,4"]
    assert {(a["variant"], a["accept"]) for a in answers} == {("second", "application/x-final")}


def test_direct_mode_sends_a_request_to_the_container_it_names(sm, smr, model_data):
    name = unique("feat-direct")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        Containers=[
            _container(model_data, "a", ContainerHostname="alpha"),
            _container(model_data, "b", ContainerHostname="beta"),
        ],
        InferenceExecutionConfig={"Mode": "Direct"},
    )
    endpoint = _endpoint(sm, name)
    try:
        answer = smr.invoke_endpoint(EndpointName=endpoint, Body=b"x", TargetContainerHostname="beta")
        assert json.loads(answer["Body"].read())["variant"] == "b"
        with pytest.raises(ClientError) as raised:
            smr.invoke_endpoint(EndpointName=endpoint, Body=b"x", TargetContainerHostname="gamma")
        assert error_code(raised) == "ValidationError"
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


def test_target_model_on_a_single_model_endpoint_is_a_validation_error(sm, smr, model_data):
    name = unique("feat-single")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=_container(model_data, "one"))
    endpoint = _endpoint(sm, name)
    try:
        with pytest.raises(ClientError) as raised:
            smr.invoke_endpoint(EndpointName=endpoint, Body=b"x", TargetModel="a.tar.gz")
        assert error_code(raised) == "ValidationError"
        assert raised.value.response["Error"]["Message"] == (
            f"Endpoint {endpoint} is not a multi-model endpoint and does not support target model header."
        )
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


def test_bad_multi_model_and_pipeline_models_are_refused(sm, model_data):
    multi = {"Image": FAKE_IMAGE, "Mode": "MultiModel"}
    with pytest.raises(ClientError) as raised:
        sm.create_model(ModelName=unique("feat-bad"), ExecutionRoleArn=ROLE, PrimaryContainer=multi)
    assert error_code(raised) == "ValidationException" and "ModelDataUrl" in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as raised:
        sm.create_model(
            ModelName=unique("feat-bad"),
            ExecutionRoleArn=ROLE,
            Containers=[{**multi, "ModelDataUrl": "s3://b/p/"}, _container(model_data, "x")],
        )
    assert error_code(raised) == "ValidationException"


# --- serverless -----------------------------------------------------------------------------------------------


def _serverless_model(sm, model_data):
    name = unique("feat-sls")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=_container(model_data, "sls"))
    return name


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ({"ServerlessConfig": {"MemorySizeInMB": 1500, "MaxConcurrency": 2}}, "MemorySizeInMB"),
        (
            {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}, "InstanceType": "ml.m5.large"},
            "InstanceType",
        ),
        (
            {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2, "ProvisionedConcurrency": 3}},
            "ProvisionedConcurrency",
        ),
    ],
)
def test_serverless_config_is_validated_as_aws_does(sm, model_data, variant, message):
    model = _serverless_model(sm, model_data)
    with pytest.raises(ClientError) as raised:
        sm.create_endpoint_config(
            EndpointConfigName=unique("feat-cfg"),
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": model, **variant}],
        )
    assert error_code(raised) == "ValidationException"
    assert message in raised.value.response["Error"]["Message"]


def test_a_serverless_endpoint_starts_on_first_call_and_bounds_concurrency(stack, sm, stack_url, model_data):
    serverless = {"ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}
    endpoint = _endpoint(sm, _serverless_model(sm, model_data), serverless)
    no_retries = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    smr = boto3.client(
        "sagemaker-runtime",
        endpoint_url=stack_url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=no_retries,
    )
    try:
        described = sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
        assert described["CurrentServerlessConfig"] == {"MemorySizeInMB": 1024, "MaxConcurrency": 1}
        deployment = stack.backend().endpoints.store.find(endpoint).deployment
        assert deployment.variants[0].instances == []  # nothing runs before the first request
        assert json.loads(smr.invoke_endpoint(EndpointName=endpoint, Body=b"x")["Body"].read())["variant"] == "sls"
        assert deployment.variants[0].serverless.cold_starts == 1

        slow = threading.Thread(target=smr.invoke_endpoint, kwargs={"EndpointName": endpoint, "Body": b"sleep 2"})
        slow.start()
        time.sleep(0.5)
        with pytest.raises(ClientError) as raised:  # a second request while the one allowed is in flight
            smr.invoke_endpoint(EndpointName=endpoint, Body=b"x")
        assert error_code(raised) == "ThrottlingException"
        slow.join()
        smr.invoke_endpoint(EndpointName=endpoint, Body=b"x")
        assert deployment.variants[0].serverless.cold_starts == 1  # warm from now on
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


def test_a_serverless_container_over_its_memory_size_is_stopped_and_started_again(sm, smr, model_data):
    serverless = {"ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 2}}
    endpoint = _endpoint(sm, _serverless_model(sm, model_data), serverless)
    try:
        smr.invoke_endpoint(EndpointName=endpoint, Body=b"x")
        with pytest.raises(ClientError) as raised:  # 1100 MiB held for 5 s: stopped within about a second
            smr.invoke_endpoint(EndpointName=endpoint, Body=b"hold 1100 5")
        assert error_code(raised) == "ModelError"
        deadline = time.monotonic() + 60
        while True:  # the supervisor starts it again
            try:
                smr.invoke_endpoint(EndpointName=endpoint, Body=b"x")
                break
            except ClientError as exc:
                assert exc.response["Error"]["Code"] in ("ModelError", "ServiceUnavailable")
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


# --- asynchronous inference -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sns_topics(stack_url):
    sns = boto3.client(
        "sns", endpoint_url=stack_url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
    sqs = boto3.client(
        "sqs", endpoint_url=stack_url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
    topics = {}
    for kind in ("success", "error"):
        arn = sns.create_topic(Name=unique(f"async-{kind}"))["TopicArn"]
        queue = sqs.create_queue(QueueName=unique(f"async-{kind}"))["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        topics[kind] = (arn, queue)
    return sqs, topics


@pytest.fixture(scope="module")
def async_endpoint(sm, bucket, model_data, sns_topics):
    _, topics = sns_topics
    name = unique("feat-async")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=_container(model_data, "async"))
    config = {
        "OutputConfig": {
            "S3OutputPath": f"s3://{bucket}/async/out",
            "S3FailurePath": f"s3://{bucket}/async/failures",
            "NotificationConfig": {
                "SuccessTopic": topics["success"][0],
                "ErrorTopic": topics["error"][0],
                "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC"],
            },
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
    }
    endpoint = _endpoint(sm, name, AsyncInferenceConfig=config)
    yield endpoint
    sm.delete_endpoint(EndpointName=endpoint)


def _object(s3, uri, timeout=60):
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError:
            assert time.monotonic() < deadline, f"{uri} was never written"
            time.sleep(0.1)


def _message(sqs, queue):
    for _ in range(100):
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            return json.loads(messages[0]["Body"])
    raise AssertionError("no notification")


def test_invoke_endpoint_async_writes_the_answer_and_notifies(sm, smr, s3, bucket, async_endpoint, sns_topics):
    sqs, topics = sns_topics
    s3.put_object(Bucket=bucket, Key="async/in/one.csv", Body=b"1,2,3")
    response = smr.invoke_endpoint_async(
        EndpointName=async_endpoint,
        InputLocation=f"s3://{bucket}/async/in/one.csv",
        ContentType="text/csv",
        Accept="application/json",
        InferenceId="inference-1",
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["InferenceId"] == "inference-1"
    assert response["OutputLocation"] == f"s3://{bucket}/async/out/inference-1.out"
    assert response["FailureLocation"] == f"s3://{bucket}/async/failures/inference-1-error.out"
    answer = json.loads(_object(s3, response["OutputLocation"]))
    assert (answer["variant"], answer["content_type"], answer["accept"], answer["input"]) == (
        "async",
        "text/csv",
        "application/json",
        "1,2,3",
    )
    note = _message(sqs, topics["success"][1])
    assert note["invocationStatus"] == "Completed" and note["inferenceId"] == "inference-1"
    assert note["responseParameters"]["outputLocation"] == response["OutputLocation"]
    assert note["requestParameters"]["endpointName"] == async_endpoint
    assert json.loads(note["responseBody"]["content"]) == answer


def test_a_failed_async_request_writes_the_failure_and_notifies_the_error_topic(
    smr, s3, bucket, async_endpoint, sns_topics
):
    sqs, topics = sns_topics
    s3.put_object(Bucket=bucket, Key="async/in/bad.csv", Body=b"error")
    response = smr.invoke_endpoint_async(
        EndpointName=async_endpoint, InputLocation=f"s3://{bucket}/async/in/bad.csv", ContentType="text/csv"
    )
    failure = _object(s3, response["FailureLocation"]).decode()
    assert "Received client error (400)" in failure and "bad payload" in failure
    note = _message(sqs, topics["error"][1])
    assert note["invocationStatus"] == "Failed" and note["inferenceId"] == response["InferenceId"]
    assert "bad payload" in note["failureReason"]


def test_async_bad_input_is_a_validation_error(sm, smr, bucket, async_endpoint, model_data):
    with pytest.raises(ClientError) as raised:  # the input object does not exist
        smr.invoke_endpoint_async(EndpointName=async_endpoint, InputLocation=f"s3://{bucket}/async/in/none.csv")
    assert error_code(raised) == "ValidationError"
    assert "InputLocation" in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as raised:  # no such endpoint
        smr.invoke_endpoint_async(EndpointName="no-such-endpoint", InputLocation=f"s3://{bucket}/async/in/one.csv")
    assert error_code(raised) == "ValidationError"
    assert raised.value.response["Error"]["Message"] == "Endpoint no-such-endpoint of account 123456789012 not found."
    name = unique("feat-sync")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=_container(model_data, "sync"))
    endpoint = _endpoint(sm, name)
    try:  # an endpoint without AsyncInferenceConfig
        with pytest.raises(ClientError) as raised:
            smr.invoke_endpoint_async(EndpointName=endpoint, InputLocation=f"s3://{bucket}/async/in/one.csv")
        assert error_code(raised) == "ValidationError"
    finally:
        sm.delete_endpoint(EndpointName=endpoint)
    with pytest.raises(ClientError) as raised:
        sm.create_endpoint_config(
            EndpointConfigName=unique("feat-cfg"),
            ProductionVariants=[
                {"VariantName": "v", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
            ],
            AsyncInferenceConfig={"OutputConfig": {"S3FailurePath": f"s3://{bucket}/f"}},
        )
    assert error_code(raised) == "ValidationException"
