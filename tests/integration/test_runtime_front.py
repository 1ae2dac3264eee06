"""The runtime front (docs/performance.md#the-runtime-front): InvokeEndpoint answered on the event loop that owns the
stack's port, every other request handed with its connection to the WSGI server, on raw sockets.

The WSGI server names itself in a ``Server`` header; the front sends none: that tells which one answered.
"""

import json
import socket
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from tests.capabilities import requires_capability
from tests.integration.conftest import FAKE_IMAGE, REGION, ROLE, unique
from tests.integration.helpers import wait_endpoint

TIMEOUT = 1.0  # the front stack's request timeout


@pytest.fixture(scope="module")
def front_stack(tmp_path_factory):
    fake = str(Path(__file__).with_name("fake_container.py"))
    settings = StackSettings(
        data_dir=tmp_path_factory.mktemp("front"),
        port=0,
        region=REGION,
        extra_images={FAKE_IMAGE: (sys.executable, fake)},
        request_timeout_seconds=TIMEOUT,
        persistence=False,
    )
    stack = LocalStack(settings)
    stack.start()
    yield stack
    stack.stop()


def _clients(stack):
    kwargs = {"endpoint_url": stack.url, "region_name": REGION, "aws_access_key_id": "t", "aws_secret_access_key": "t"}
    return boto3.client("sagemaker", **kwargs), boto3.client("sagemaker-runtime", **kwargs)


@pytest.fixture(scope="module")
def endpoint(front_stack):
    sm, _ = _clients(front_stack)
    model, config, name = unique("front-model"), unique("front-cfg"), unique("front-ep")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": FAKE_IMAGE})
    variant = {"VariantName": "only", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
    return name


def _connect(stack, receive_buffer=None):
    host, port = stack.url.rsplit("//", 1)[1].split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # set before connecting: the window stays this small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(30)
    sock.connect((host, int(port)))
    return sock


def _invoke(name, body, *extra):
    head = [f"POST /endpoints/{name}/invocations HTTP/1.1", "Host: 127.0.0.1", "Content-Type: text/csv", *extra]
    return ("\r\n".join([*head, f"Content-Length: {len(body)}", "", ""])).encode() + body


class _Answers:
    """Reads HTTP/1.1 answers (Content-Length bodies) off one socket, in order."""

    def __init__(self, sock):
        self._sock, self._data = sock, b""

    def next(self):
        while b"\r\n\r\n" not in self._data:
            self._fill()
        head, _, self._data = self._data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers["content-length"])
        while len(self._data) < length:
            self._fill()
        body, self._data = self._data[:length], self._data[length:]
        return int(lines[0].split()[1]), headers, body

    def closed(self):
        try:
            return self._sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def _fill(self):
        chunk = self._sock.recv(65536)
        assert chunk, "the connection closed before the answer was complete"
        self._data += chunk


def _by_front(headers):
    return "server" not in headers


def test_pipelined_invocations_are_answered_in_order_by_the_front(front_stack, endpoint):
    with _connect(front_stack) as sock:
        sock.sendall(b"".join(_invoke(endpoint, b"x" * size) for size in (3, 70_000, 1)))
        answers = _Answers(sock)
        for size in (3, 70_000, 1):
            status, headers, body = answers.next()
            assert status == 200 and _by_front(headers)
            assert json.loads(body)["size"] == size
            assert headers["x-amzn-invoked-production-variant"] == "only"


def test_the_same_call_again_on_a_connection_is_guarded_as_the_first(front_stack, endpoint):
    """A head that repeats the last one but for its length is read from it; any other difference is read anew."""
    with _connect(front_stack) as sock:
        answers = _Answers(sock)
        for body in (b"1", b"22", b"333"):
            sock.sendall(_invoke(endpoint, body))
            status, headers, answer = answers.next()
            assert status == 200 and _by_front(headers) and json.loads(answer)["size"] == len(body)
        sock.sendall(_invoke(endpoint, b"4").replace(b"Host: 127.0.0.1", b"Host: evil.example"))
        status, headers, answer = answers.next()
        assert status == 403 and b"AccessDenied" in answer and not _by_front(headers)
    with _connect(front_stack) as sock:
        sock.sendall(_invoke(endpoint, b"1"))
        assert _Answers(sock).next()[0] == 200
        sock.sendall(_invoke(endpoint, b"").replace(b"Content-Length: 0", b"Content-Length: 536870912") + b"1,2")
        status, headers, answer = _Answers(sock).next()
        assert status == 400 and b"exceeds the maximum of 6291456 bytes" in answer and not _by_front(headers)


def test_a_process_runtime_container_is_relayed_over_its_unix_socket_and_a_tcp_only_one_still_is(front_stack, endpoint):
    requires_capability("mount-namespaces", why="the container's /opt/ml/serve.sock")
    sm, smr = _clients(front_stack)
    answer = json.loads(smr.invoke_endpoint(EndpointName=endpoint, Body=b"1,2", ContentType="text/csv")["Body"].read())
    assert answer["via"] == "unix"
    name = _fake_endpoint(sm, "tcp", {"FAKE_SERVE_UNIX": "none"})
    with _connect(front_stack) as sock:
        sock.sendall(_invoke(name, b"1,2,3") + _invoke(name, b"4"))
        answers = _Answers(sock)
        for size in (5, 1):
            status, headers, body = answers.next()
            assert status == 200 and _by_front(headers)
            assert json.loads(body)["via"] == "tcp" and json.loads(body)["size"] == size
    sm.delete_endpoint(EndpointName=name)


def test_a_request_that_arrives_a_byte_at_a_time_is_answered(front_stack, endpoint):
    with _connect(front_stack) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in _invoke(endpoint, b"1,2,3"):
            sock.send(bytes([byte]))
        status, headers, body = _Answers(sock).next()
    assert status == 200 and _by_front(headers) and json.loads(body)["size"] == 5


def test_a_connection_goes_to_the_wsgi_server_with_the_bytes_the_front_read(front_stack, endpoint):
    chunked = (
        f"POST /endpoints/{endpoint}/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
        "Transfer-Encoding: chunked\r\n\r\n3\r\n1,2\r\n2\r\n,3\r\n0\r\n\r\n"
    ).encode()
    list_endpoints = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: SageMaker.ListEndpoints\r\n"
        b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}"
    )
    with _connect(front_stack) as sock:
        sock.sendall(_invoke(endpoint, b"1") + chunked + list_endpoints)  # one write: the front reads all three
        answers = _Answers(sock)
        status, headers, body = answers.next()
        assert status == 200 and _by_front(headers) and json.loads(body)["size"] == 1
        status, headers, body = answers.next()
        assert status == 200 and not _by_front(headers) and json.loads(body)["size"] == 5
        assert headers.get("connection") == "close"  # a chunked body: the WSGI path closes after it
    with _connect(front_stack) as sock:
        sock.sendall(_invoke(endpoint, b"1") + list_endpoints)
        answers = _Answers(sock)
        assert answers.next()[0] == 200
        status, headers, body = answers.next()
        assert status == 200 and endpoint in [e["EndpointName"] for e in json.loads(body)["Endpoints"]]
        assert headers.get("connection") == "close" and answers.closed()


def test_a_large_answer_the_client_has_not_read_leaves_before_the_wsgi_servers_answer(front_stack):
    sm, _ = _clients(front_stack)
    name = _fake_endpoint(sm, "echo", {"FAKE_ECHO": "1"})
    body = b"x" * (5 * 1024 * 1024)
    health = b"GET /_sagestack/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with _connect(front_stack, receive_buffer=4096) as sock:
        sock.sendall(_invoke(name, body) + health)
        # the front has answered (more than the sockets hold) and wants to hand the health check on; well within
        # TIMEOUT, after which a client that does not read its answer is rightly cut off
        time.sleep(TIMEOUT / 2)
        answers = _Answers(sock)
        status, headers, answer = answers.next()
        assert status == 200 and _by_front(headers) and json.loads(answer)["input"] == body.decode()
        status, headers, answer = answers.next()
        assert status == 200 and not _by_front(headers) and json.loads(answer) == {"status": "running"}
    sm.delete_endpoint(EndpointName=name)


def test_connection_close_is_honoured(front_stack, endpoint):
    with _connect(front_stack) as sock:
        sock.sendall(_invoke(endpoint, b"1", "Connection: close"))
        answers = _Answers(sock)
        status, headers, _ = answers.next()
        assert status == 200 and headers["connection"] == "close" and answers.closed()


def test_a_foreign_host_or_a_browser_origin_on_the_invoke_path_is_refused(front_stack, endpoint):
    foreign_host = _invoke(endpoint, b"1").replace(b"Host: 127.0.0.1", b"Host: evil.example")
    for request in (_invoke(endpoint, b"1", "Origin: http://evil.example"), foreign_host):
        with _connect(front_stack) as sock:
            sock.sendall(request)
            status, headers, body = _Answers(sock).next()
            assert status == 403 and b"AccessDenied" in body and not _by_front(headers)


def test_a_stalled_head_or_body_and_an_idle_connection_are_ended(front_stack, endpoint):
    whole = _invoke(endpoint, b"1,2,3")
    for partial in (whole[:30], whole[:-2]):  # within the head; within the body
        with _connect(front_stack) as sock:
            sock.sendall(partial)
            started = time.monotonic()
            assert _Answers(sock).closed()
            assert time.monotonic() - started < 10 * TIMEOUT
    with _connect(front_stack) as sock:
        sock.sendall(whole)
        answers = _Answers(sock)
        assert answers.next()[0] == 200
        assert answers.closed()  # kept alive, then silent for the request timeout


def test_a_call_longer_than_the_request_timeout_still_gets_its_answer(front_stack, endpoint):
    with _connect(front_stack) as sock:
        sock.sendall(_invoke(endpoint, f"sleep {2 * TIMEOUT}".encode()))
        status, headers, body = _Answers(sock).next()
    assert status == 200 and _by_front(headers) and json.loads(body)["size"] == len(f"sleep {2 * TIMEOUT}")


def test_errors_keep_their_aws_shape_and_the_connection(front_stack, endpoint):
    _, smr = _clients(front_stack)
    with pytest.raises(ClientError) as raised:
        smr.invoke_endpoint(EndpointName=endpoint, Body=b"error", ContentType="text/csv")
    assert raised.value.response["Error"]["Code"] == "ModelError"
    assert raised.value.response["OriginalStatusCode"] == 400
    with _connect(front_stack) as sock:
        sock.sendall(_invoke("no-such-endpoint", b"1") + _invoke(endpoint, b"1"))
        answers = _Answers(sock)
        status, headers, body = answers.next()
        assert status == 400 and headers["x-amzn-errortype"] == "ValidationError" and _by_front(headers)
        assert "no-such-endpoint" in json.loads(body)["message"]
        assert answers.next()[0] == 200


def test_many_pipelined_calls_answered_at_once_come_back_in_order(front_stack, endpoint):
    """Answers the front gives at once (here: an unknown endpoint) do not nest one call per pipelined request: 3,000
    of them, then a call the container answers, come back in order on the one connection."""
    calls = 3000
    with _connect(front_stack) as sock:
        sock.sendall(_invoke("no-such-endpoint", b"1") * calls + _invoke(endpoint, b"22"))
        answers = _Answers(sock)
        statuses = [answers.next()[0] for _ in range(calls)]
        status, headers, body = answers.next()
    assert statuses == [400] * calls
    assert status == 200 and _by_front(headers) and json.loads(body)["size"] == 2


def test_stopping_the_stack_ends_the_connections_the_front_holds(tmp_path):
    stack = LocalStack(StackSettings(data_dir=tmp_path, port=0, persistence=False))
    stack.start()
    try:
        sock = _connect(stack)
        sock.sendall(_invoke("none-here", b"1"))
        answers = _Answers(sock)
        assert answers.next()[0] == 400
    finally:
        stack.stop()
    with sock:
        assert answers.closed()
    with pytest.raises(OSError):
        _connect(stack).close()  # nothing listens on the port any more


def _fake_endpoint(sm, prefix, environment):
    """An InService endpoint of one fake container with ``environment``; its name."""
    model, config, name = unique(f"{prefix}-model"), unique(f"{prefix}-cfg"), unique(f"{prefix}-ep")
    container = {"Image": FAKE_IMAGE, "Environment": environment}
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer=container)
    variant = {"VariantName": "only", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
    return name
