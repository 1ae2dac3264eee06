"""The edge's guards (issue 17, findings 1, 4, 5 and 6; docs/security.md), through raw HTTP and boto3.

No browser and no foreign host may drive the stack; bodies are read within their limits; every client error is a 4xx
in AWS's error shape; nothing meant for SageMaker reaches moto's SageMaker mock; SigV4 is checked when asked for.
"""

import http.client
import json
import socket
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.config import SettingsError, StackSettings
from infra.control_plane.server import LocalStack
from tests.integration.conftest import FAKE_IMAGE, ROLE, unique
from tests.integration.helpers import training_request, wait_endpoint, wait_training

JSON = "application/x-amz-json-1.1"


def _request(url, method, path, body=b"", headers=None, chunked=False):
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def _sagemaker(url, operation, params, **headers):
    body = params if isinstance(params, bytes) else json.dumps(params).encode()
    target = headers.pop("target", f"SageMaker.{operation}")
    response, data = _request(url, "POST", "/", body, {"X-Amz-Target": target, "Content-Type": JSON, **headers})
    return response, data


def _raw(url, data, read_timeout=60):
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=read_timeout) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk
            if b"\r\n\r\n" in received and _complete(received):
                return received


def _complete(received):
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _error_code(data):
    return json.loads(data)["__type"]


# Finding 1: any web page can drive the stack.


def test_a_cors_preflight_from_a_foreign_origin_is_refused(stack_url):
    headers = {
        "Origin": "http://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-amz-target",
    }
    response, _ = _request(stack_url, "OPTIONS", "/", headers=headers)
    assert response.status == 403
    assert response.getheader("Access-Control-Allow-Origin") is None


def test_a_request_from_a_foreign_origin_is_refused(stack_url):
    response, data = _sagemaker(stack_url, "ListModels", {}, Origin="http://evil.example")
    assert response.status == 403
    assert _error_code(data) == "AccessDeniedException"


def test_a_foreign_host_header_is_refused(stack_url):
    response, data = _sagemaker(stack_url, "ListModels", {}, Host="evil.example")
    assert response.status == 403
    assert _error_code(data) == "AccessDeniedException"
    response, data = _request(stack_url, "GET", "/", headers={"Host": "rebound.evil.example:4566"})
    assert response.status == 403
    assert b"<Code>AccessDenied</Code>" in data


def test_loopback_names_and_the_machines_own_addresses_are_served(stack_url):
    port = urlsplit(stack_url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.1"):
        response, data = _sagemaker(stack_url, "ListModels", {}, Host=host)
        assert response.status == 200, (host, data)


def test_an_allowed_origin_gets_cors_and_others_do_not(tmp_path):
    stack = LocalStack(StackSettings(data_dir=tmp_path, port=0, allowed_origins=("http://localhost:3000",)))
    stack.start()
    try:
        preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
        response, _ = _request(stack.url, "OPTIONS", "/", headers=preflight)
        assert response.status == 200
        assert response.getheader("Access-Control-Allow-Origin") == "http://localhost:3000"
        response, _ = _sagemaker(stack.url, "ListModels", {}, Origin="http://localhost:3000")
        assert response.status == 200
        assert response.getheader("Access-Control-Allow-Origin") == "http://localhost:3000"
        response, _ = _sagemaker(stack.url, "ListModels", {}, Origin="http://localhost:3001")
        assert response.status == 403
    finally:
        stack.stop()


# Finding 4: bodies and connections.


def test_an_oversized_invocation_is_refused_from_its_content_length_before_the_body_is_read(stack_url):
    head = (
        b"POST /endpoints/any/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: text/csv\r\nContent-Length: 536870912\r\n\r\n"
    )
    answer = _raw(stack_url, head + b"1,2,3")  # the rest of the 512 MiB never comes: the edge must not wait for it
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"x-amzn-ErrorType: ValidationError" in answer
    assert b"exceeds the maximum of 6291456 bytes" in answer


@pytest.fixture(scope="module")
def echo_endpoint(sm, bucket):
    name = unique("edge-train")
    sm.create_training_job(**training_request(name, bucket))
    model_data = wait_training(sm, name)["ModelArtifacts"]["S3ModelArtifacts"]
    model = unique("edge-model")
    sm.create_model(
        ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": FAKE_IMAGE, "ModelDataUrl": model_data}
    )
    config = unique("edge-cfg")
    variant = {"VariantName": "a", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])
    endpoint = unique("edge-ep")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    assert wait_endpoint(sm, endpoint)["EndpointStatus"] == "InService"
    yield endpoint
    sm.delete_endpoint(EndpointName=endpoint)


def test_a_chunked_invocation_body_reaches_the_container(stack_url, echo_endpoint):
    chunks = iter([b"1,2,3\n", b"4,5,6\n"])
    response, data = _request(
        stack_url, "POST", f"/endpoints/{echo_endpoint}/invocations", chunks, {"Content-Type": "text/csv"}, chunked=True
    )
    assert response.status == 200, data
    assert json.loads(data)["size"] == 12


def test_a_chunked_create_model_is_read(stack_url, sm):
    name = unique("chunked-model")
    params = {"ModelName": name, "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": FAKE_IMAGE}}
    encoded = json.dumps(params).encode()
    chunks = iter([encoded[:10], encoded[10:]])
    headers = {"X-Amz-Target": "SageMaker.CreateModel", "Content-Type": JSON}
    response, data = _request(stack_url, "POST", "/", chunks, headers, chunked=True)
    assert response.status == 200, data
    assert sm.describe_model(ModelName=name)["ModelName"] == name


def test_a_stalled_request_is_timed_out(tmp_path):
    stack = LocalStack(StackSettings(data_dir=tmp_path, port=0, request_timeout_seconds=0.5))
    stack.start()
    try:
        parts = urlsplit(stack.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")  # and then nothing
            assert sock.recv(1024) == b""  # the edge closed the connection (the client's 60 s would raise)
    finally:
        stack.stop()


def test_a_garbage_request_line_gets_a_400(stack_url):
    answer = _raw(stack_url, b"\x16\x03\x01 garbage line here\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"BadRequestException" in answer


# Finding 5: 500s for client errors.

_TIMESTAMP_FILTERS = ["CreationTimeAfter", "CreationTimeBefore", "CreatedAfter", "LastModifiedTimeAfter"]


def test_an_out_of_range_timestamp_filter_is_a_validation_error_on_every_list_operation(stack_url, sm):
    model = sm.meta.service_model
    checked = 0
    for operation in model.operation_names:
        if not operation.startswith("List"):
            continue
        members = model.operation_model(operation).input_shape.members
        member = next((name for name in _TIMESTAMP_FILTERS if name in members), None)
        if member is None:
            continue
        response, data = _sagemaker(stack_url, operation, {member: 100000000000000000000})
        if _error_code(data) == "UnknownOperationException":
            continue  # not implemented by the stack: answered as such
        assert response.status == 400, (operation, data)
        assert _error_code(data) == "ValidationException", (operation, data)
        checked += 1
    assert checked >= 13


def test_list_pipeline_execution_steps_without_an_arn_is_a_validation_error(stack_url):
    response, data = _sagemaker(stack_url, "ListPipelineExecutionSteps", {})
    assert response.status == 400
    assert _error_code(data) == "ValidationException"


def test_a_deeply_nested_body_is_a_validation_error(stack_url):
    for depth in (100, 100_000):
        body = b'{"Tags":' + b"[" * depth + b"]" * depth + b"}"
        response, data = _sagemaker(stack_url, "ListModels", body)
        assert response.status == 400, data
        assert _error_code(data) == "ValidationException"


def test_a_malformed_content_length_is_a_400_in_aws_shape(stack_url):
    answer = _raw(
        stack_url,
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: SageMaker.ListModels\r\n"
        b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: abc\r\n\r\n{}",
    )
    assert answer.startswith(b"HTTP/1.1 400")
    assert b'"__type": "SerializationException"' in answer


# Finding 6: split brain.


def test_a_target_that_is_not_exactly_sagemaker_never_reaches_moto(stack_url, sm):
    name = unique("split")
    params = training_request(name, "sagestack-tests")
    for target in ("AmazonSageMaker.CreateTrainingJob", "sagemaker.CreateTrainingJob", "SageMaker"):
        response, data = _sagemaker(stack_url, "", params, target=target)
        assert response.status == 400, data
        assert _error_code(data) == "UnknownOperationException"
    signed = (
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=0"
    )
    response, data = _sagemaker(stack_url, "", params, target="AmazonSageMaker.CreateTrainingJob", Authorization=signed)
    assert _error_code(data) == "UnknownOperationException"
    with pytest.raises(ClientError):
        sm.describe_training_job(TrainingJobName=name)


def test_invoke_endpoint_with_response_stream_says_it_is_not_implemented(smr):
    with pytest.raises(ClientError) as raised:
        smr.invoke_endpoint_with_response_stream(EndpointName="no-such-endpoint", Body=b"x")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"


def test_an_unimplemented_operation_says_so(sm):
    with pytest.raises(ClientError) as raised:
        sm.list_domains()
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "not implemented" in raised.value.response["Error"]["Message"]


# Authentication.

KEY_ID, SECRET = "AKIDSAGESTACKTEST", "the-secret"


@pytest.fixture(scope="module")
def signed_stack(tmp_path_factory):
    settings = StackSettings(
        data_dir=tmp_path_factory.mktemp("signed"), port=0, require_auth=True, access_keys={KEY_ID: SECRET}
    )
    stack = LocalStack(settings)
    stack.start()
    yield stack
    stack.stop()


def _client(stack, service, key_id=KEY_ID, secret=SECRET):
    return boto3.client(
        service, endpoint_url=stack.url, region_name="us-east-1", aws_access_key_id=key_id, aws_secret_access_key=secret
    )


def test_signed_requests_with_a_configured_key_are_served(signed_stack):
    assert "Models" in _client(signed_stack, "sagemaker").list_models()
    s3 = _client(signed_stack, "s3")
    s3.create_bucket(Bucket="signed")
    s3.put_object(Bucket="signed", Key="a dir/key+with=odd&chars.csv", Body=b"1,2\n")
    assert s3.get_object(Bucket="signed", Key="a dir/key+with=odd&chars.csv")["Body"].read() == b"1,2\n"
    assert "signed" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert _client(signed_stack, "logs").describe_log_groups(logGroupNamePrefix="/aws/x")["logGroups"] == []
    with pytest.raises(ClientError) as raised:
        _client(signed_stack, "sagemaker-runtime").invoke_endpoint(EndpointName="nope", Body=b"1")
    assert raised.value.response["Error"]["Code"] == "ValidationError"


def test_a_bad_signature_or_unknown_key_gets_awss_error(signed_stack):
    with pytest.raises(ClientError) as raised:
        _client(signed_stack, "sagemaker", secret="wrong").list_models()
    assert raised.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError) as raised:
        _client(signed_stack, "sagemaker", key_id="AKIDUNKNOWN").list_models()
    assert raised.value.response["Error"]["Code"] == "UnrecognizedClientException"
    with pytest.raises(ClientError) as raised:
        _client(signed_stack, "s3", secret="wrong").list_buckets()
    assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    response, data = _sagemaker(signed_stack.url, "ListModels", {})
    assert response.status == 403
    assert _error_code(data) == "MissingAuthenticationTokenException"


def test_binding_beyond_loopback_requires_access_keys(tmp_path):
    with pytest.raises(SettingsError):
        StackSettings(data_dir=tmp_path, host="0.0.0.0")
    assert StackSettings(data_dir=tmp_path, host="0.0.0.0", access_keys={KEY_ID: SECRET}).auth_required
    assert not StackSettings(data_dir=tmp_path).auth_required


def test_the_default_local_setup_stays_zero_config(sm, s3):
    assert "Models" in sm.list_models()
    assert "Buckets" in s3.list_buckets()
