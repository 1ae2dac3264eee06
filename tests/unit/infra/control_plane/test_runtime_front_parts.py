"""The runtime front's parts (docs/performance.md#the-runtime-front): the strict InvokeEndpoint head it answers itself,
and its relay to serving containers, against a scripted HTTP server on loopback."""

import asyncio
import socket
import threading
from dataclasses import dataclass

import pytest
import uvloop

from infra.control_plane.edge.request_head import HeadTemplate, invoke_endpoint_name, parse_invoke_head
from infra.control_plane.hosting.invocation.container_relay import ContainerRelay
from infra.control_plane.hosting.serving_chain import HopFailed, ServingProcess

LIMIT = 6 * 1024 * 1024
HEAD = (
    b"POST /endpoints/my-endpoint/invocations HTTP/1.1\r\nHost: 127.0.0.1:4566\r\nContent-Type: text/csv\r\n"
    b"Accept: application/json\r\nX-Amz-Date: 20260101T000000Z\r\nContent-Length: 5"
)


# --- the head the front answers itself


def test_an_sdk_shaped_head_is_read_into_wsgi_names():
    head = parse_invoke_head(HEAD + b"\r\nX-Amzn-SageMaker-Custom-Attributes: a=1\r\naccept: text/csv", LIMIT)
    assert head is not None
    assert (head.endpoint, head.content_length, head.close) == ("my-endpoint", 5, False)
    environ = head.environ
    assert environ["PATH_INFO"] == environ["REQUEST_URI"] == "/endpoints/my-endpoint/invocations"
    assert environ["CONTENT_TYPE"] == "text/csv" and environ["CONTENT_LENGTH"] == "5"
    assert environ["HTTP_HOST"] == "127.0.0.1:4566" and environ["HTTP_X_AMZ_DATE"] == "20260101T000000Z"
    assert environ["HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES"] == "a=1"
    assert environ["HTTP_ACCEPT"] == "application/json,text/csv"  # repeated headers joined, as werkzeug does


def test_connection_close_is_noted():
    head = parse_invoke_head(HEAD + b"\r\nConnection: keep-alive, Close", LIMIT)
    assert head is not None and head.close


OTHER_SHAPES = [
    HEAD.replace(b"/invocations", b"/invocations?x=1"),  # a query string
    HEAD.replace(b"my-endpoint", b"my%2Dendpoint"),  # percent-encoding: the WSGI path decodes it
    HEAD.replace(b"/invocations", b"/async-invocations"),
    HEAD.replace(b"HTTP/1.1", b"HTTP/1.0"),
    HEAD.replace(b"POST", b"PUT"),
    HEAD + b"\r\nTransfer-Encoding: chunked",
    HEAD + b"\r\nExpect: 100-continue",
    HEAD + b"\r\nUpgrade: websocket",
    HEAD + b"\r\nContent-Length: 5",  # declared twice
    HEAD.replace(b"Content-Length: 5", b"Content-Length: +5"),
    HEAD.replace(b"Content-Length: 5", b"Content-Length: 6291457"),  # over the limit: the WSGI path refuses it
    HEAD.replace(b"\r\nContent-Length: 5", b""),  # no length
    HEAD.replace(b"Host: 127.0.0.1:4566\r\n", b""),
    HEAD + b"\r\nHost: evil.example",
    HEAD + b"\r\n folded continuation",
    HEAD + b"\r\nBad Name: x",
    HEAD + b"\r\nName : x",
    HEAD + b"\r\nNo-Colon",
    HEAD + b"\r\nX-Bare: a\nb",
    HEAD + b"\r\nX-Nul: a\0b",
]


@pytest.mark.parametrize("head", OTHER_SHAPES)
def test_any_other_shape_goes_to_the_wsgi_server(head):
    assert parse_invoke_head(head, LIMIT) is None


def test_a_head_read_again_with_its_names_known_reads_the_same():
    """A second reading takes the path for header names already seen: the same environ, the same refusals."""
    heads = [HEAD + b"\r\nX-Odd-Name-%d:  spaced value \t\r\nConnection: Close" % n for n in range(3)]
    heads += [HEAD + b"\r\nX-Twice: a\r\nX-Twice: b", HEAD + b"\r\nX_Twice: a\r\nX-Twice: b", HEAD + b"\r\nTE: x"]
    for head in heads:
        first, second = parse_invoke_head(head, LIMIT), parse_invoke_head(head, LIMIT)
        assert first == second
    known = parse_invoke_head(heads[0], LIMIT)
    assert known is not None and known.close and known.environ["HTTP_X_ODD_NAME_0"] == "spaced value"
    twice = parse_invoke_head(heads[4], LIMIT)
    assert twice is not None and twice.environ["HTTP_X_TWICE"] == "a,b"
    assert parse_invoke_head(heads[5], LIMIT) is None


@pytest.mark.parametrize("template_head", [HEAD, HEAD.replace(b"X-Amz-Date", b"Content-Length: 5\r\nX-Amz-Date")[:-19]])
def test_a_head_that_repeats_the_last_but_for_its_length_reads_as_parsed(template_head):
    first = parse_invoke_head(template_head, LIMIT)
    assert first is not None
    template = HeadTemplate.of(template_head, first)
    assert template is not None
    for length in (b"0", b"7", b"6291456", b"0012"):
        again = template_head.replace(b"Content-Length: 5", b"Content-Length: " + length)
        assert template.read(again, LIMIT) == parse_invoke_head(again, LIMIT)
    assert first.environ["CONTENT_LENGTH"] == "5"  # the template's own head is not changed by its readings


@pytest.mark.parametrize("head", [*OTHER_SHAPES, HEAD.replace(b"20260101T", b"20260102T"), HEAD + b"\r\nX-More: 1"])
def test_a_head_that_differs_in_anything_else_is_not_read_from_the_template(head):
    template = HeadTemplate.of(HEAD, parse_invoke_head(HEAD, LIMIT))  # type: ignore[arg-type]
    assert template is not None and template.read(head, LIMIT) is None


def test_a_length_not_written_plainly_makes_no_template():
    spaced = HEAD.replace(b"Content-Length: 5", b"content-length:\t5")
    assert HeadTemplate.of(spaced, parse_invoke_head(spaced, LIMIT)) is not None  # type: ignore[arg-type]
    for odd in (b"Content-Length: 05", b"Content-Length: 5 "):
        head = HEAD.replace(b"Content-Length: 5", odd)
        assert HeadTemplate.of(head, parse_invoke_head(head, LIMIT)) is None  # type: ignore[arg-type]


def test_the_request_line_alone_tells_an_invocation():
    assert invoke_endpoint_name(b"POST /endpoints/a-1/invocations HTTP/1.1") == b"a-1"
    others = (b"POST / HTTP/1.1", b"GET /endpoints/a/invocations HTTP/1.1", b"POST /endpoints/a/b/invocations HTTP/1.1")
    for line in others:
        assert invoke_endpoint_name(line) is None


# --- the relay to serving containers


@dataclass
class _Container:
    url: str
    unix_path: str | None = None  # a server's unix socket (the process runtime's servers have one)

    def connect_unix(self):
        if self.unix_path is None:
            return None
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.setblocking(False)
        try:
            connection.connect(self.unix_path)
        except OSError:
            connection.close()
            raise
        return connection


class ScriptedServer:
    """Answers each request read on loopback (or on the unix socket ``unix_path``) with the next scripted bytes
    (None: answer nothing, hold the line)."""

    def __init__(self, answers, close_after=False, unix_path=None):
        self.answers, self.close_after = list(answers), close_after
        self.requests, self.connections = [], 0
        if unix_path is None:
            self._listener = socket.create_server(("127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        else:
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(unix_path)
            self._listener.listen()
            self.url = "http://127.0.0.1:9"  # never connected to: the relay takes the unix socket
        self.unix_path = unix_path
        threading.Thread(target=self._accept, daemon=True).start()

    def process(self, hostname="primary"):
        container = _Container(self.url, self.unix_path)
        return ServingProcess(hostname, container, pool=None)  # the relay never uses the urllib3 pool

    def close(self):
        self._listener.close()

    def _accept(self):
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        with connection:
            reader = connection.makefile("rb")
            while self.answers:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                self.requests.append((head, reader.read(_declared_length(head))))
                answer = self.answers.pop(0)
                if answer is None:
                    threading.Event().wait(5)
                    return
                if not answer:  # drop the connection without answering (as a server closing a kept-alive one)
                    return
                connection.sendall(answer)
                if self.close_after:
                    return


def _declared_length(head):
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            return int(value)
    return 0


def _run(coroutine):
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def _ok(body, content_type=b"application/json", extra=b""):
    return b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s" % (
        content_type,
        len(body),
        extra,
        body,
    )


def test_answers_come_back_whole_over_one_kept_alive_connection():
    server = ScriptedServer([_ok(b'{"a": 1}'), _ok(b"x" * 100_000, b"text/csv")])

    first, second = _run(_two_calls(server))
    assert (first.status, first.headers["content-type"], first.body) == (200, "application/json", b'{"a": 1}')
    assert second.body == b"x" * 100_000
    assert server.connections == 1
    assert server.requests[1][1] == b"3" * 70_000
    assert b"Content-Length: 70000\r\n" in server.requests[1][0]


def test_chunked_interim_and_close_delimited_answers_are_read():
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/csv\r\n\r\n"
        b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: t\r\n\r\n"
    )
    until_close = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end"
    for answer, body in ((chunked, b"abcdefg"), (until_close, b"to the end")):
        server = ScriptedServer([answer], close_after=True)
        got = _run(ContainerRelay().in_series([server.process()], b"q", {}, 5.0))
        assert (got.status, got.body) == (200, body)


@pytest.mark.parametrize(
    ("header_lines", "expected"),
    [
        (b"Content-Type: text/csv\r\nX-A:  v \x0c", {"content-type": "text/csv", "x-a": "v"}),
        (b"X-A: 1\r\nx-a: 2\r\nContent-Type: text/csv", {"x-a": "1, 2", "content-type": "text/csv"}),
        (b"X-A: a\nX-B: b\r\nContent-Type: text/csv", {"x-a": "a\nX-B: b", "content-type": "text/csv"}),
        (
            b" X-A : a\r\nBad Name: b\r\nContent-Type: text/csv",
            {"x-a": "a", "bad name": "b", "content-type": "text/csv"},
        ),
    ],
)
def test_a_container_answers_header_lines_are_read_as_sent(header_lines, expected):
    body = b"done"
    answer = b"HTTP/1.1 200 OK\r\n%s\r\nContent-Length: 4\r\n\r\n%s" % (header_lines, body)
    server = ScriptedServer([answer])
    got = _run(ContainerRelay().in_series([server.process()], b"q", {"Content-Type": "text/csv"}, 5.0))
    assert got.body == body
    assert got.headers == {**expected, "content-length": "4"}


def test_a_connection_the_container_closed_is_retried_once_on_a_fresh_one():
    server = ScriptedServer([_ok(b"one"), b"", _ok(b"two")])  # the second request's connection is dropped

    async def two_calls():
        relay = ContainerRelay()
        first = await relay.in_series([server.process()], b"1", {}, 5.0)
        second = await relay.in_series([server.process()], b"2", {}, 5.0)
        return first.body, second.body

    assert _run(two_calls()) == (b"one", b"two")
    assert server.connections == 2
    assert [body for _, body in server.requests] == [b"1", b"2", b"2"]


def test_a_pipeline_passes_each_answer_on_and_only_the_last_container_gets_accept():
    first = ScriptedServer([_ok(b"1,2,3", b"text/csv")])
    last = ScriptedServer([_ok(b"[6]", b"application/json", b"X-Amzn-SageMaker-Custom-Attributes: seen\r\n")])
    processes = [first.process("pre"), last.process("model")]
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    answer = _run(ContainerRelay().in_series(processes, b'{"x": 1}', headers, 5.0))
    assert answer.body == b"[6]" and answer.headers["x-amzn-sagemaker-custom-attributes"] == "seen"
    first_head, first_body = first.requests[0]
    last_head, last_body = last.requests[0]
    assert first_body == b'{"x": 1}' and b"Accept" not in first_head and b"Content-Type: application/json" in first_head
    assert last_body == b"1,2,3" and b"Content-Type: text/csv" in last_head and b"Accept: application/json" in last_head


def test_an_error_answer_names_its_container_and_status():
    server = ScriptedServer([b"HTTP/1.1 415 Unsupported\r\nContent-Length: 12\r\n\r\nnot this one"])
    with pytest.raises(HopFailed) as failed:
        _run(ContainerRelay().in_series([server.process("model")], b"1", {}, 5.0))
    assert (failed.value.hostname, failed.value.status, failed.value.message) == ("model", 415, "not this one")


def test_a_container_that_does_not_answer_in_time_is_a_timeout_never_retried():
    server = ScriptedServer([None, _ok(b"late")])
    with pytest.raises(HopFailed) as failed:
        _run(ContainerRelay().in_series([server.process()], b"1", {}, 0.3))
    assert failed.value.timed_out and failed.value.status == 0
    assert server.connections == 1


def test_no_server_at_the_address_is_a_connect_failure():
    # a bound socket that does not listen: connecting is refused, and no other process can take the port meanwhile
    # (a closed listener's port could be taken by another test worker's server)
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        process = ServingProcess("primary", _Container(f"http://127.0.0.1:{bound.getsockname()[1]}"), pool=None)
        with pytest.raises(HopFailed) as failed:
            _run(ContainerRelay().in_series([process], b"1", {}, 5.0))
    assert failed.value.connect_failed and "not reachable" in failed.value.message


def test_an_answer_that_is_not_http_is_a_failure_not_a_hang():
    server = ScriptedServer([b"SSH-2.0-OpenSSH\r\n\r\n", b"SSH-2.0-OpenSSH\r\n\r\n"])
    with pytest.raises(HopFailed) as failed:
        _run(ContainerRelay().in_series([server.process()], b"1", {}, 5.0))
    assert not failed.value.connect_failed and not failed.value.timed_out
    assert "did not answer HTTP" in failed.value.message


def test_a_container_with_a_unix_socket_is_reached_there_over_kept_alive_connections(tmp_path):
    server = ScriptedServer([_ok(b'{"a": 1}'), _ok(b"y" * 90_000, b"text/csv")], unix_path=str(tmp_path / "s.sock"))

    first, second = _run(_two_calls(server))
    assert (first.status, first.body, second.body) == (200, b'{"a": 1}', b"y" * 90_000)
    assert server.connections == 1
    assert [body for _, body in server.requests] == [b"1,2", b"3" * 70_000]
    assert server.requests[0][0].startswith(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:9\r\n")


def test_a_unix_socket_nobody_listens_on_is_a_connect_failure(tmp_path):
    path = tmp_path / "gone.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bound:
        bound.bind(str(path))  # bound, never listening: connecting is refused
        process = ServingProcess("primary", _Container("http://127.0.0.1:9", str(path)), pool=None)
        with pytest.raises(HopFailed) as failed:
            _run(ContainerRelay().in_series([process], b"1", {}, 5.0))
    assert failed.value.connect_failed and "not reachable" in failed.value.message
    assert str(tmp_path) not in failed.value.message


def test_a_shorter_timeout_after_a_longer_one_still_fires_first():
    """One timer serves every exchange: it is set again for an earlier deadline, and again after each sweep."""
    server = ScriptedServer([None, None])

    async def two_held_calls():
        relay = ContainerRelay()
        slow = asyncio.ensure_future(relay.in_series([server.process()], b"1", {}, 2.0))
        await asyncio.sleep(0.05)
        fast = asyncio.ensure_future(relay.in_series([server.process()], b"2", {}, 0.3))
        done, _ = await asyncio.wait([slow, fast], return_when=asyncio.FIRST_COMPLETED)
        first = [name for name, call in (("fast", fast), ("slow", slow)) if call in done]
        await asyncio.wait([slow])
        relay.close()
        return first, fast.exception(), slow.exception()

    first, fast_failure, slow_failure = _run(two_held_calls())
    assert first == ["fast"]  # the slow call is still waiting when the fast one has timed out
    assert isinstance(fast_failure, HopFailed) and fast_failure.timed_out
    assert isinstance(slow_failure, HopFailed) and slow_failure.timed_out


# --- the relay's callback form (``send``), which the front uses


def _sent(server, bodies, timeout=5.0, hostname="primary"):
    """Each body through ``ContainerRelay.send`` in turn, the next sent from the last one's callback; the outcomes,
    and whether each came back without a task (from the kept connection's own callback)."""

    async def calls():
        relay, outcomes, done = ContainerRelay(), [], asyncio.get_running_loop().create_future()

        def send(index):
            relay.send(
                [server.process(hostname)],
                bodies[index],
                {"Content-Type": "text/csv"},
                timeout,
                "/invocations",
                lambda outcome: delivered(index, outcome),
            )

        def delivered(index, outcome):
            task = asyncio.current_task()
            outcomes.append((outcome, task is None))
            if index + 1 < len(bodies):
                send(index + 1)
            else:
                done.set_result(None)

        send(0)
        await done
        relay.close()
        return outcomes

    return _run(calls())


def test_sent_calls_come_back_by_callback_and_keep_their_connection():
    server = ScriptedServer([_ok(b"1", b"text/csv"), _ok(b"2", b"text/csv"), _ok(b"3", b"text/csv")])
    outcomes = _sent(server, [b"a", b"b", b"c"])
    assert [(answer.status, answer.body) for answer, _ in outcomes] == [(200, b"1"), (200, b"2"), (200, b"3")]
    assert [untasked for _, untasked in outcomes] == [False, True, True]  # the first one connected in a task
    assert server.connections == 1 and [body for _, body in server.requests] == [b"a", b"b", b"c"]


def test_a_sent_call_that_fails_is_delivered_as_a_failed_hop():
    server = ScriptedServer([_ok(b"1"), b"HTTP/1.1 415 Unsupported\r\nContent-Length: 12\r\n\r\nnot this one", None])
    outcomes = _sent(server, [b"a", b"b", b"c"], timeout=0.3, hostname="model")
    refused, timed_out = outcomes[1][0], outcomes[2][0]
    assert isinstance(refused, HopFailed) and (refused.hostname, refused.status) == ("model", 415)
    assert refused.message == "not this one" and not refused.timed_out
    assert isinstance(timed_out, HopFailed) and timed_out.timed_out and timed_out.status == 0
    assert server.connections == 1  # an error answer keeps the connection; a timeout is never sent again


def test_a_sent_call_whose_kept_connection_was_dropped_is_sent_again_on_a_fresh_one():
    server = ScriptedServer([_ok(b"one"), b"", _ok(b"two")])  # the second request's connection is dropped
    outcomes = _sent(server, [b"1", b"2"])
    assert [answer.body for answer, _ in outcomes] == [b"one", b"two"]
    assert server.connections == 2 and [body for _, body in server.requests] == [b"1", b"2", b"2"]


async def _two_calls(server):
    """Two calls to ``server`` through one relay: a small body, then one of 70,000 bytes."""
    relay = ContainerRelay()
    first = await relay.in_series([server.process()], b"1,2", {"Content-Type": "text/csv"}, 5.0)
    second = await relay.in_series([server.process()], b"3" * 70_000, {"Content-Type": "text/csv"}, 5.0)
    relay.close()
    return first, second
