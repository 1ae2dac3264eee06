"""The edge: one threaded WSGI server. SageMaker and SageMaker Runtime are ours; everything else is moto."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from werkzeug.serving import BaseWSGIServer, make_server

from infra.config import StackSettings
from infra.control_plane.core.store import Registry
from infra.control_plane.runtime.invoke import Invocation, InvokeFront
from infra.control_plane.sagemaker.backend import SageMakerBackend, build_backend
from infra.control_plane.sagemaker.containers import ContainerHost
from infra.control_plane.sagemaker.responses import SageMakerDispatcher
from infra.runtime.api import Runtime

logger = logging.getLogger(__name__)

HEALTH_PATH = "/_sagestack/health"
StartResponse = Callable[..., Any]
_INVOKE_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
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
        self._invoke = InvokeFront(registry, settings.invoke_timeout_seconds)
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
        reply = self._invoke.handle(call)
        return _respond(start_response, reply.status, reply.headers, reply.body)


_REASONS = {200: "OK", 400: "Bad Request", 424: "Failed Dependency", 500: "Internal Server Error", 503: "Unavailable"}


def _respond(start_response: StartResponse, status: int, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
    headers = [*headers, ("Content-Length", str(len(body)))]
    start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
    return [body]


def _quiet_handler() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            logger.debug("%s %s -> %s", self.command, self.path, code)

    return QuietHandler


class LocalStack:
    """The whole stack in this process: ``url = LocalStack(settings).start()``, then ``stop()``."""

    def __init__(self, settings: StackSettings | None = None, runtime: Runtime | None = None) -> None:
        self.settings = settings or StackSettings.from_env()
        self._runtime = runtime
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._containers: ContainerHost | None = None
        self._registry: Registry[SageMakerBackend] | None = None

    @property
    def url(self) -> str:
        return self.settings.url

    def start(self) -> str:
        server = make_server(
            self.settings.host, self.settings.port, _placeholder, threaded=True, request_handler=_quiet_handler()
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
