"""Models -> endpoint configs -> endpoints, InvokeEndpoint through the edge (fake test image)."""

import json
import threading

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import FAKE_IMAGE, ROLE, unique
from tests.integration.helpers import training_request, wait_endpoint, wait_training


@pytest.fixture(scope="module")
def model_data(sm, bucket):
    name = unique("ep-train")
    sm.create_training_job(**training_request(name, bucket))
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Completed"
    return described["ModelArtifacts"]["S3ModelArtifacts"]


def _model(sm, model_data, environment=None):
    name = unique("model")
    container = {"Image": FAKE_IMAGE, "ModelDataUrl": model_data, "Environment": environment or {}}
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)
    return name


def _config(sm, variants):
    name = unique("cfg")
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": v,
                "ModelName": m,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": w,
            }
            for v, m, w in variants
        ],
    )
    return name


@pytest.fixture(scope="module")
def endpoint(sm, model_data):
    model_a = _model(sm, model_data, {"VARIANT_TAG": "A"})
    model_b = _model(sm, model_data, {"VARIANT_TAG": "B"})
    name = unique("ep")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=_config(sm, [("a", model_a, 1.0), ("b", model_b, 1.0)]))
    described = wait_endpoint(sm, name)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    yield name
    sm.delete_endpoint(EndpointName=name)


def test_endpoint_describes_variants_without_empty_structures(sm, endpoint):
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert {v["VariantName"] for v in described["ProductionVariants"]} == {"a", "b"}
    assert "DataCaptureConfig" not in described
    assert endpoint in [e["EndpointName"] for e in sm.list_endpoints(StatusEquals="InService")["Endpoints"]]


def test_invoke_passes_headers_and_reports_the_variant(smr, endpoint):
    response = smr.invoke_endpoint(
        EndpointName=endpoint,
        Body=b"1,2,3",
        ContentType="text/csv",
        Accept="application/json",
        CustomAttributes="trace=1",
        TargetVariant="b",
    )
    answer = json.loads(response["Body"].read())
    assert answer == {
        "marker": answer["marker"],
        "variant": "B",
        "content_type": "text/csv",
        "accept": "application/json",
        "size": 5,
        "via": answer["via"],  # the container's unix socket or TCP: test_runtime_front.py tells which
    }
    assert answer["marker"].startswith("ep-train-")
    assert response["InvokedProductionVariant"] == "b"
    assert response["CustomAttributes"] == "echo:trace=1"
    assert response["ContentType"] == "application/json"


def test_weighted_routing_reaches_every_variant(smr, endpoint):
    seen = {smr.invoke_endpoint(EndpointName=endpoint, Body=b"x")["InvokedProductionVariant"] for _ in range(40)}
    assert seen == {"a", "b"}


def test_container_error_is_model_error_with_original_status(smr, endpoint):
    with pytest.raises(ClientError) as raised:
        smr.invoke_endpoint(EndpointName=endpoint, Body=b"error", ContentType="text/csv")
    response = raised.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert response["OriginalMessage"] == "bad payload"
    assert response["LogStreamArn"].startswith(
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/"
    )


def test_oversized_request_and_unknown_endpoint_are_validation_errors(smr, endpoint):
    with pytest.raises(ClientError) as raised:
        smr.invoke_endpoint(EndpointName=endpoint, Body=b"x" * (6 * 1024 * 1024 + 1))
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as raised:
        smr.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"x")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["Error"]["Message"] == ("Endpoint no-such-endpoint of account 123456789012 not found.")


def test_endpoint_logs_go_to_cloudwatch(logs, endpoint):
    streams = logs.describe_log_streams(logGroupName=f"/aws/sagemaker/Endpoints/{endpoint}")["logStreams"]
    assert {s["logStreamName"].split("/")[0] for s in streams} == {"a", "b"}


def test_update_endpoint_swaps_without_failed_requests(sm, smr, model_data):
    first = _model(sm, model_data, {"VARIANT_TAG": "old"})
    second = _model(sm, model_data, {"VARIANT_TAG": "new"})
    name = unique("upd")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=_config(sm, [("main", first, 1.0)]))
    assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
    failures, tags, stop = [], set(), threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                tags.add(json.loads(smr.invoke_endpoint(EndpointName=name, Body=b"x")["Body"].read())["variant"])
            except ClientError as exc:
                failures.append(exc)

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        sm.update_endpoint(EndpointName=name, EndpointConfigName=_config(sm, [("main", second, 1.0)]))
        assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
        while "new" not in tags:
            pass
    finally:
        stop.set()
        worker.join()
        sm.delete_endpoint(EndpointName=name)
    assert failures == []
    assert tags == {"old", "new"}


def test_endpoint_with_unknown_image_fails(sm):
    model = unique("badimg")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "nowhere/unknown:1"})
    name = unique("failed")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=_config(sm, [("v", model, 1.0)]))
    described = wait_endpoint(sm, name)
    assert described["EndpointStatus"] == "Failed"
    assert "nowhere/unknown:1" in described["FailureReason"]
    sm.delete_endpoint(EndpointName=name)
    with pytest.raises(ClientError):
        sm.describe_endpoint(EndpointName=name)


def _metric_sums(cloudwatch, endpoint, variant):
    """Sum of each AWS/SageMaker invocation metric of the variant over the last hour."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    sums = {}
    for name in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency"):
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=name,
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
            StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(minutes=5),
            Period=3600,
            Statistics=["Sum", "Maximum"],
        )["Datapoints"]
        sums[name] = (sum(p["Sum"] for p in points), max((p["Maximum"] for p in points), default=0.0))
    return sums


def test_invocations_and_latency_are_published_to_cloudwatch(sm, smr, stack_url, model_data):
    import time

    import boto3

    name = unique("ep-metrics")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=_config(sm, [("only", _model(sm, model_data), 1.0)]))
    assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
    try:
        for _ in range(5):
            smr.invoke_endpoint(EndpointName=name, Body=b"1,2", ContentType="text/csv")
        with pytest.raises(ClientError):
            smr.invoke_endpoint(EndpointName=name, Body=b"error", ContentType="text/csv")
        cloudwatch = boto3.client("cloudwatch", endpoint_url=stack_url, region_name="us-east-1")
        deadline = time.monotonic() + 60  # the stack publishes every endpoint_metrics_seconds (10 s)
        while (sums := _metric_sums(cloudwatch, name, "only"))["Invocations"][0] < 6 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sums["Invocations"][0] == 6
        assert sums["Invocation4XXErrors"][0] == 1 and sums["Invocation5XXErrors"][0] == 0
        assert sums["ModelLatency"][1] > 0  # microseconds: the five answered calls
    finally:
        sm.delete_endpoint(EndpointName=name)
