"""The edge: a runtime front for InvokeEndpoint and a threaded WSGI server behind it, on one port. SageMaker and
SageMaker Runtime are ours; everything else is moto."""

from __future__ import annotations

import functools
import io
import json
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from infra.config import StackSettings
from infra.control_plane.cloudformation.stack_records import cloudformation_loaded, restore_stack, stack_rows
from infra.control_plane.core.durable.moto_mirror import MirroredService
from infra.control_plane.core.store import Registry
from infra.control_plane.edge.http_guards import StartResponse, respond
from infra.control_plane.edge.routing import HEALTH_PATH, INVOKE_PATH, KEEP_ALIVE, UNREAD_BODY, EdgeApp
from infra.control_plane.edge.runtime_front import RuntimeFront
from infra.control_plane.execution.container_host import ContainerHost
from infra.control_plane.experiments.sagemaker_metrics import METRICS_PATHS
from infra.control_plane.feature_store.featurestore_runtime import is_featurestore_path
from infra.control_plane.mlflow_servers.mlflow_front import is_tracking_call
from infra.control_plane.sagemaker_backend import SageMakerBackend, build_backend
from infra.control_plane.stack_restart import DurableState, backend_factory
from infra.runtime.api import Runtime
from infra.runtime.process.process_ledger import reap_survivors

logger = logging.getLogger(__name__)

__all__ = ["HEALTH_PATH", "LocalStack"]
# CloudFormation stacks are kept by the moto mirror; read only once moto's CloudFormation is imported (its first
# request), restored at start when stored (docs/local-stack.md#what-persists-where-and-how-to-reset).
_MIRRORED_ABOVE_CORE = {"cloudformation": MirroredService(stack_rows, restore_stack, cloudformation_loaded)}
_DRAIN_LIMIT = 64 * 1024 * 1024  # an over-limit body up to this size is discarded after the answer, so the client
# (which sends its whole body before reading) sees the error instead of a reset connection
_DRAIN_CHUNK = 64 * 1024


class _Connections:
    """The edge's open client connections, so ``stop`` can end the kept-alive ones (their threads wait to read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()

    def add(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.add(connection)

    def discard(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.discard(connection)

    def close_all(self) -> None:
        with self._lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client


def _quiet_handler(connections: _Connections, timeout_seconds: float) -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):
        # TCP_NODELAY on every connection: werkzeug writes a response's headers and body as two sends, and with
        # Nagle's algorithm the body waits for the client's (delayed) ACK of the headers: up to 40 ms per request.
        disable_nagle_algorithm = True
        # A socket timeout on every connection: a stalled request or an idle kept-alive connection ends (and its
        # thread with it) instead of holding a thread forever.
        timeout = timeout_seconds

        def setup(self) -> None:
            super().setup()
            prefix = getattr(self.request, "prefix", b"")
            if prefix:  # a connection the runtime front handed over, with the bytes it had read
                self.rfile = io.BufferedReader(_PrefixedStream(prefix, self.rfile.detach()))
            connections.add(self.connection)

        def finish(self) -> None:
            connections.discard(self.connection)
            super().finish()

        def run_wsgi(self) -> None:
            # werkzeug answers every request with "Connection: close" and then drains the socket for 10 ms (it
            # cannot tell a leftover body from the next request). InvokeEndpoint calls are run here instead, so a
            # client's kept-alive connection carries the next call without a new TCP handshake and thread.
            keeps_alive = _keeps_alive(self.command, self.path) or is_tracking_call(
                self.path, self.headers.get("x-mlflow-sm-tracking-server-arn")
            )
            if not self.headers.get("Expect") and keeps_alive:
                _run_keep_alive(self)
            else:
                super().run_wsgi()

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """Malformed HTTP (request line, headers): an AWS-shaped error, then the connection closes."""
            body = json.dumps({"__type": "BadRequestException", "message": message or "Bad request"}).encode()
            self.close_connection = True
            if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
                self.request_version = "HTTP/1.0"  # an unreadable request line: still answer with a status line
            self.send_response(code, message)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            logger.debug("%s %s -> %s", getattr(self, "command", "-"), getattr(self, "path", "-"), code)

    return QuietHandler


class _HandedSocket(socket.socket):
    """A connection the runtime front handed to the WSGI server, and the bytes it had already read from it."""

    prefix: bytes = b""


class _PrefixedStream(io.RawIOBase):
    """Reads ``prefix`` first, then ``raw`` (the connection)."""

    def __init__(self, prefix: bytes, raw: Any) -> None:
        super().__init__()
        self._prefix, self._raw = memoryview(prefix), raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            count = min(len(buffer), len(self._prefix))
            buffer[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        return int(self._raw.readinto(buffer))

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def _hand_over(server: BaseWSGIServer, descriptor: int, prefix: bytes, peer: Any) -> None:
    """Serve a connection the runtime front read the start of, as if the WSGI server had accepted it (a thread)."""
    connection = _HandedSocket(fileno=descriptor)
    connection.setblocking(True)
    connection.prefix = prefix
    server.process_request(connection, peer)


def _keeps_alive(method: str, path: str) -> bool:
    """InvokeEndpoint, the Feature Store runtime and BatchPutMetrics: the calls a client makes many times in a row."""
    if method == "POST" and INVOKE_PATH.match(path):
        return True
    if METRICS_PATHS.get(path.partition("?")[0], ("",))[0] == method:
        return True
    return method in ("GET", "PUT", "POST", "DELETE") and is_featurestore_path(path.partition("?")[0])


def _run_keep_alive(handler: Any) -> None:
    """Run the WSGI app for one request on ``handler``; keep the connection when the app read the whole body."""
    handler.environ = environ = handler.make_environ()
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        started[:] = [status, headers]
        return _no_write

    try:
        body = b"".join(handler.server.app(environ, start_response))
        status, headers = started
    except Exception:
        logger.exception("edge request %s failed", handler.path)
        status, headers, body = "500 Internal Server Error", [("Content-Length", "0")], b""
    if not environ.get(KEEP_ALIVE):
        handler.close_connection = True
    code, _, reason = str(status).partition(" ")
    handler.send_response(int(code), reason)
    for name, value in headers:
        handler.send_header(name, value)
    if handler.close_connection:
        handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)
    unread = environ.get(UNREAD_BODY)
    if isinstance(unread, int) and unread <= _DRAIN_LIMIT:
        handler.wfile.flush()
        _discard(handler.rfile, unread)


def _discard(stream: Any, length: int) -> None:
    """Read and drop ``length`` bytes without keeping them (bounded memory)."""
    try:
        while length > 0:
            data = stream.read(min(_DRAIN_CHUNK, length))
            if not data:
                return
            length -= len(data)
    except OSError:
        return  # the client gave up, or the connection timed out


def _no_write(data: bytes) -> None:
    raise RuntimeError("the edge's apps return their body; they never call write()")


class LocalStack:
    """The whole stack in this process: ``url = LocalStack(settings).start()``, then ``stop()``."""

    def __init__(self, settings: StackSettings | None = None, runtime: Runtime | None = None) -> None:
        self.settings = settings or StackSettings.from_env()
        self._runtime = runtime
        self._server: BaseWSGIServer | None = None
        self._front: RuntimeFront | None = None
        self._containers: ContainerHost | None = None
        self._registry: Registry[SageMakerBackend] | None = None
        self._state: DurableState | None = None
        self._connections = _Connections()

    @property
    def url(self) -> str:
        return self.settings.url

    def start(self) -> str:
        server = make_server(
            self.settings.host,
            self.settings.port,
            _placeholder,
            threaded=True,
            request_handler=_quiet_handler(self._connections, self.settings.request_timeout_seconds),
        )
        self.settings = self.settings.with_port(int(server.server_address[1]))
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Jobs run as users of their own: they reach their directories by bind mounts, never through the data dir,
        # which holds other jobs' data and the S3 store (docs/security.md#what-a-job-can-touch).
        self.settings.data_dir.chmod(0o700)
        try:
            state = DurableState(self.settings, _MIRRORED_ABOVE_CORE) if self.settings.persistence else None
        except Exception:
            server.server_close()
            raise
        if self._runtime is None and self.settings.runtime == "process":
            # before anything starts: end the containers a killed earlier run left (docs/local-stack.md)
            reap_survivors(self.settings.data_dir / "runtime")
        containers = ContainerHost(self.settings, self._runtime)
        registry: Registry[SageMakerBackend] = Registry(
            backend_factory(lambda account, region: build_backend(self.settings, containers, account, region), state)
        )
        server.app = app = EdgeApp(self.settings, registry)
        self._server, self._containers, self._registry, self._state = server, containers, registry, state
        if state is not None:
            state.restore(registry)  # endpoints re-deploy in the background while the edge already answers
        # The runtime front accepts on the server's socket: InvokeEndpoint on its event loop, every other
        # connection handed to the WSGI server (docs/performance.md#the-runtime-front).
        hand_over = functools.partial(_hand_over, server)
        self._front = RuntimeFront(app, server.socket, hand_over, self.settings.request_timeout_seconds)
        self._front.start()
        logger.info("Sagestack listening on %s (data dir %s)", self.url, self.settings.data_dir)
        return self.url

    def serve_forever(self) -> None:
        """Start and block until :meth:`stop` is called from another thread or a signal handler."""
        self.start()
        if self._front is not None:
            self._front.join()

    def backend(self, account_id: str | None = None, region: str | None = None) -> SageMakerBackend:
        """The SageMaker backend of one account/region (tests and benchmarks look at running containers)."""
        if self._registry is None:
            raise RuntimeError("the stack is not started")
        return self._registry.get(account_id or self.settings.account_id, region or self.settings.region)

    def stop(self) -> None:
        if self._front is not None:
            self._front.stop()  # no new connection from here on; the front's own connections end
        if self._server is not None:
            self._connections.close_all()  # kept-alive connections: their threads would hold server_close
            self._server.server_close()
        for backend in self._registry.all() if self._registry is not None else []:
            backend.close()
        if self._state is not None:
            self._state.close()  # after the backends: what they wrote last is stored
            self._state = None
        if self._containers is not None:
            self._containers.shutdown()
        self._server, self._front = None, None


def _placeholder(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return respond(start_response, 503, [], b"starting")
