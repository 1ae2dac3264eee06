"""Endpoint data capture (docs/reference/formats.md#data-capture-records) and faults: a dying container, invoke
timeouts, stopping with jobs running."""

import base64
import json
import os
import signal
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from tests.integration.conftest import FAKE_IMAGE, REGION, ROLE, unique
from tests.integration.helpers import training_request, wait_endpoint, wait_status


def _deploy(sm, capture=None, instances=1):
    model = unique("cap-model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": FAKE_IMAGE})
    config = unique("cap-cfg")
    extra = {"DataCaptureConfig": capture} if capture else {}
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InitialInstanceCount": instances,
                "InstanceType": "ml.m5.large",
            }
        ],
        **extra,
    )
    name = unique("cap-ep")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    described = wait_endpoint(sm, name)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return name


def _capture_files(s3, bucket, prefix, wanted, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        records = [
            json.loads(line)
            for key in keys
            for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
        ]
        if len(records) >= wanted or time.monotonic() > deadline:
            return keys, records
        time.sleep(0.1)


def test_data_capture_writes_records_in_sagemakers_layout(sm, smr, s3, bucket):
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{bucket}/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
    }
    name = _deploy(sm, capture)
    assert sm.describe_endpoint(EndpointName=name)["DataCaptureConfig"]["CaptureStatus"] == "Started"
    smr.invoke_endpoint(EndpointName=name, Body=b"1,2,3", ContentType="text/csv", InferenceId="inf-1")
    smr.invoke_endpoint(EndpointName=name, Body=b"\x00\x01", ContentType="application/x-binary")
    keys, records = _capture_files(s3, bucket, f"capture/{name}/AllTraffic/", 2)
    parts = keys[0].split("/")
    assert parts[:3] == ["capture", name, "AllTraffic"] and len(parts) == 8
    assert [len(p) for p in parts[3:7]] == [4, 2, 2, 2]
    minute, second, millis, rest = parts[7].split("-", 3)
    assert (len(minute), len(second), len(millis)) == (2, 2, 3) and rest.endswith(".jsonl")
    by_id = {r["eventMetadata"].get("inferenceId"): r for r in records}
    csv = by_id["inf-1"]
    assert csv["eventVersion"] == "0"
    assert csv["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "1,2,3",
        "encoding": "CSV",
    }
    output = csv["captureData"]["endpointOutput"]
    assert output["mode"] == "OUTPUT" and output["encoding"] == "BASE64"  # application/json is not listed
    assert json.loads(base64.b64decode(output["data"]))["size"] == 5
    assert csv["eventMetadata"]["inferenceTime"].endswith("Z")
    binary = by_id[None]["captureData"]["endpointInput"]
    assert (binary["encoding"], base64.b64decode(binary["data"])) == ("BASE64", b"\x00\x01")
    sm.delete_endpoint(EndpointName=name)


def test_sampling_zero_captures_nothing_and_input_only_mode(sm, smr, s3, bucket):
    base = {"DestinationS3Uri": f"s3://{bucket}/capture0", "CaptureOptions": [{"CaptureMode": "Input"}]}
    none = _deploy(sm, {**base, "InitialSamplingPercentage": 0})
    some = _deploy(sm, {**base, "InitialSamplingPercentage": 100})
    for endpoint in (none, some):
        smr.invoke_endpoint(EndpointName=endpoint, Body=b"x", ContentType="text/csv")
    sm.delete_endpoint(EndpointName=some)  # delete flushes at once
    sm.delete_endpoint(EndpointName=none)
    _, records = _capture_files(s3, bucket, f"capture0/{some}/", 1)
    assert list(records[0]["captureData"]) == ["endpointInput"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix=f"capture0/{none}/").get("KeyCount", 0) == 0


def test_a_dead_serving_container_is_restarted(stack, sm, smr):
    name = _deploy(sm)
    instance = stack.backend().endpoints.store.find(name).deployment.variants[0].instances[0]
    old_pid = instance.container.pid
    os.killpg(old_pid, signal.SIGKILL)
    failed, deadline = 0, time.monotonic() + 60
    while True:
        try:
            smr.invoke_endpoint(EndpointName=name, Body=b"x", ContentType="text/csv")
            break
        except ClientError as exc:
            assert exc.response["Error"]["Code"] in ("ModelError", "ServiceUnavailable")
            failed += 1
            assert time.monotonic() < deadline, "the container was not restarted"
            time.sleep(0.05)
    assert instance.restarts == 1 and instance.container.pid != old_pid
    smr.invoke_endpoint(EndpointName=name, Body=b"x", ContentType="text/csv")
    sm.delete_endpoint(EndpointName=name)


@pytest.fixture(scope="module")
def second_stack(tmp_path_factory):
    fake = str(Path(__file__).with_name("fake_container.py"))
    settings = StackSettings(
        data_dir=tmp_path_factory.mktemp("stack2"),
        port=0,
        region=REGION,
        extra_images={FAKE_IMAGE: (sys.executable, fake)},
        invoke_timeout_seconds=0.5,
    )
    local = LocalStack(settings)
    local.start()
    yield local
    local.stop()


def _clients(url):
    kwargs = {"endpoint_url": url, "region_name": REGION, "aws_access_key_id": "t", "aws_secret_access_key": "t"}
    return boto3.client("sagemaker", **kwargs), boto3.client("sagemaker-runtime", **kwargs), kwargs


def test_invoke_timeout_is_a_model_error(second_stack):
    sm, smr, _ = _clients(second_stack.url)
    name = _deploy(sm)
    with pytest.raises(ClientError) as raised:
        smr.invoke_endpoint(EndpointName=name, Body=b"sleep 3", ContentType="text/csv")
    assert raised.value.response["Error"]["Code"] == "ModelError"
    assert raised.value.response["OriginalStatusCode"] == 0
    assert "timed out" in raised.value.response["Error"]["Message"]
    smr.invoke_endpoint(EndpointName=name, Body=b"fast", ContentType="text/csv")


def _pids_of(job_name):
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"TRAINING_JOB_NAME={job_name}".encode() in environ:
            found.append(int(proc.name))
    return found


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_stopping_the_stack_stops_running_jobs(tmp_path, s3, bucket):
    fake = str(Path(__file__).with_name("fake_container.py"))
    local = LocalStack(
        StackSettings(data_dir=tmp_path, port=0, region=REGION, extra_images={FAKE_IMAGE: (sys.executable, fake)})
    )
    local.start()
    try:
        sm = boto3.client("sagemaker", **_clients(local.url)[2])
        name = unique("sleeper")
        sm.create_training_job(**training_request(name, bucket, HyperParameters={"sleep": "120"}))
        assert wait_status(sm, name, "Training")
        deadline = time.monotonic() + 30
        while not _pids_of(name) and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = _pids_of(name)
        assert pids
    finally:
        local.stop()
    assert [pid for pid in pids if _alive(pid)] == []
