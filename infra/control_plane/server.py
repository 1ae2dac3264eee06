"""The edge: one threaded WSGI server. SageMaker and SageMaker Runtime are ours; everything else is moto."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from werkzeug.serving import BaseWSGIServer, make_server

from infra.config import StackSettings
from infra.control_plane.core.store import Registry
from infra.control_plane.execution.container_host import ContainerHost
from infra.control_plane.hosting.sagemaker_runtime import Invocation, InvokeFront
from infra.control_plane.sagemaker_backend import SageMakerBackend, build_backend
from infra.control_plane.sagemaker_dispatcher import SageMakerDispatcher
from infra.runtime.api import Runtime

logger = logging.getLogger(__name__)

HEALTH_PATH = "/_sagestack/health"
StartResponse = Callable[..., Any]
_INVOKE_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
# Set in the WSGI environ by a route that has read the whole request body (Content-Length, no chunking): only then may
# the connection carry the next request, so the handler keeps it open (werkzeug closes every connection otherwise).
KEEP_ALIVE = "sagestack.keep_alive"
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request")


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length > 0 else b""


class EdgeApp:
    """Routes a request by ``X-Amz-Target`` and path; nothing here knows a resource."""

    def __init__(self, settings: StackSettings, registry: Registry[SageMakerBackend]) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from infra.control_plane.cloudformation import CloudFormationFront  # imports moto: only when serving

        self._settings = settings
        self._control = SageMakerDispatcher(registry)
        self._invoke = InvokeFront(registry.get, settings.invoke_timeout_seconds)
        moto = DomainDispatcherApplication(create_backend_app)
        self._moto = CloudFormationFront(moto, registry, settings.account_id, settings.region)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("SageMaker."):
            return self._sagemaker(environ, start_response, target.partition(".")[2])
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "POST":
            match = _INVOKE_PATH.match(path)
            if match is not None and self._service(environ) in ("sagemaker", None):
                return self._invocations(environ, start_response, unquote(match.group("name")))
        if path == HEALTH_PATH:
            return _respond(start_response, 200, [("Content-Type", "application/json")], b'{"status": "running"}')
        result: Iterable[bytes] = self._moto(environ, start_response)
        return result

    def _region(self, environ: dict[str, Any]) -> str:
        scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        return scope.group("region") if scope else self._settings.region

    def _service(self, environ: dict[str, Any]) -> str | None:
        scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        return scope.group("service") if scope else None

    def _sagemaker(self, environ: dict[str, Any], start_response: StartResponse, op: str) -> Iterable[bytes]:
        status, body = self._control.handle(op, _read_body(environ), self._settings.account_id, self._region(environ))
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))]
        return _respond(start_response, status, headers, json.dumps(body).encode())

    def _invocations(self, environ: dict[str, Any], start_response: StartResponse, name: str) -> Iterable[bytes]:
        call = Invocation(name, self._settings.account_id, self._region(environ), _read_body(environ), environ)
        if "HTTP_TRANSFER_ENCODING" not in environ:
            environ[KEEP_ALIVE] = True
        reply = self._invoke.handle(call)
        return _respond(start_response, reply.status, reply.headers, reply.body)


_REASONS = {200: "OK", 400: "Bad Request", 424: "Failed Dependency", 500: "Internal Server Error", 503: "Unavailable"}


def _respond(start_response: StartResponse, status: int, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
    headers = [*headers, ("Content-Length", str(len(body)))]
    start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
    return [body]


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


def _quiet_handler(connections: _Connections) -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):
        # TCP_NODELAY on every connection: werkzeug writes a response's headers and body as two sends, and with
        # Nagle's algorithm the body waits for the client's (delayed) ACK of the headers: up to 40 ms per request.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            connections.add(self.connection)

        def finish(self) -> None:
            connections.discard(self.connection)
            super().finish()

        def run_wsgi(self) -> None:
            # werkzeug answers every request with "Connection: close" and then drains the socket for 10 ms (it
            # cannot tell a leftover body from the next request). InvokeEndpoint calls are run here instead, so a
            # client's kept-alive connection carries the next call without a new TCP handshake and thread.
            if self.command == "POST" and not self.headers.get("Expect") and _INVOKE_PATH.match(self.path):
                _run_keep_alive(self)
            else:
                super().run_wsgi()

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            logger.debug("%s %s -> %s", self.command, self.path, code)

    return QuietHandler


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


def _no_write(data: bytes) -> None:
    raise RuntimeError("the edge's apps return their body; they never call write()")


class LocalStack:
    """The whole stack in this process: ``url = LocalStack(settings).start()``, then ``stop()``."""

    def __init__(self, settings: StackSettings | None = None, runtime: Runtime | None = None) -> None:
        self.settings = settings or StackSettings.from_env()
        self._runtime = runtime
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._containers: ContainerHost | None = None
        self._registry: Registry[SageMakerBackend] | None = None
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
            request_handler=_quiet_handler(self._connections),
        )
        self.settings = self.settings.with_port(int(server.server_address[1]))
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        containers = ContainerHost(self.settings, self._runtime)
        registry: Registry[SageMakerBackend] = Registry(
            lambda account, region: build_backend(self.settings, containers, account, region)
        )
        server.app = EdgeApp(self.settings, registry)
        self._server, self._containers, self._registry = server, containers, registry
        self._thread = threading.Thread(target=server.serve_forever, name="sagestack-edge", daemon=True)
        self._thread.start()
        logger.info("Sagestack listening on %s (data dir %s)", self.url, self.settings.data_dir)
        return self.url

    def serve_forever(self) -> None:
        """Start and block until :meth:`stop` is called from another thread or a signal handler."""
        self.start()
        if self._thread is not None:
            self._thread.join()

    def backend(self, account_id: str | None = None, region: str | None = None) -> SageMakerBackend:
        """The SageMaker backend of one account/region (tests and benchmarks look at running containers)."""
        if self._registry is None:
            raise RuntimeError("the stack is not started")
        return self._registry.get(account_id or self.settings.account_id, region or self.settings.region)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._connections.close_all()  # kept-alive connections: their threads would hold server_close
            self._server.server_close()
        for backend in self._registry.all() if self._registry is not None else []:
            backend.close()
        if self._containers is not None:
            self._containers.shutdown()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._server = None


def _placeholder(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return _respond(start_response, 503, [], b"starting")
