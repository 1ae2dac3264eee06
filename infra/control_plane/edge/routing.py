"""Routes a guarded request: SageMaker, its runtimes and Metrics, Athena, Lambda and EMR are ours; every other service
goes to moto.

Nothing meant for SageMaker reaches moto's own SageMaker mock: a target or signing scope that names SageMaker is
answered here, with ``UnknownOperationException`` when the stack does not implement it.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from infra.config import StackSettings
from infra.control_plane.athena.athena_front import AthenaFront, athena_operation
from infra.control_plane.console.console_api import ConsoleApi
from infra.control_plane.console.console_app import ConsoleApp, is_console_path
from infra.control_plane.core.errors import UnknownOperationException
from infra.control_plane.core.store import Registry
from infra.control_plane.edge.http_guards import (
    BodyTooLarge,
    EdgeRefusal,
    StartResponse,
    check_host,
    check_origin,
    check_same_origin,
    cors_headers,
    declared_length,
    is_chunked,
    preflight_headers,
    read_body,
    refusal_parts,
    refusal_response,
    respond,
    speaks_json,
)
from infra.control_plane.edge.sigv4_check import verify_signature
from infra.control_plane.emr.emr_front import EmrFront, is_emr_request
from infra.control_plane.experiments.sagemaker_metrics import METRICS_PATHS, MetricsFront
from infra.control_plane.feature_store.featurestore_runtime import (
    MAX_REQUEST_BYTES,
    FeatureStoreRuntimeFront,
    RuntimeRequest,
    is_featurestore_path,
)
from infra.control_plane.hosting.async_inference import AsyncFront
from infra.control_plane.hosting.invocation.container_relay import ContainerRelay
from infra.control_plane.hosting.invocation.sagemaker_runtime import (
    MAX_PAYLOAD_BYTES,
    Answered,
    Invocation,
    InvokeFront,
    Reply,
    RunBlocking,
    payload_too_large,
    runtime_not_implemented,
)
from infra.control_plane.lambda_functions.lambda_front import LAMBDA_PATH, LambdaFront
from infra.control_plane.mlflow_servers.mlflow_front import (
    ARN_HEADER,
    BUFFERED_BODY_BYTES,
    MlflowFront,
    is_tracking_call,
)
from infra.control_plane.sagemaker_backend import SageMakerBackend
from infra.control_plane.sagemaker_dispatcher import SageMakerDispatcher

logger = logging.getLogger(__name__)

HEALTH_PATH = "/_sagestack/health"
INVOKE_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
ASYNC_INVOKE_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/async-invocations$")
# SageMaker Runtime's other operation (InvokeEndpointWithResponseStream): not implemented.
_RUNTIME_PATH = re.compile(r"^/endpoints/[^/]+/(?P<kind>invocations-response-stream)$")
_RUNTIME_OPERATIONS = {"invocations-response-stream": "InvokeEndpointWithResponseStream"}
# Set in the WSGI environ by a route that has read the whole request body (Content-Length, no chunking): only then may
# the connection carry the next request, so the handler keeps it open (werkzeug closes every connection otherwise).
KEEP_ALIVE = "sagestack.keep_alive"
# Set by a route that answered without reading a body declared too large: the handler discards it after answering.
UNREAD_BODY = "sagestack.unread_body"
_SERVED_HOSTS_KEPT = 64
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request")


class EdgeApp:
    """Guards, then routes a request by ``X-Amz-Target``, path and signing scope; nothing here knows a resource."""

    def __init__(self, settings: StackSettings, registry: Registry[SageMakerBackend]) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from infra.control_plane.cloudformation import DeferredFront

        self._settings = settings
        self._auth_required = settings.auth_required
        self._served_hosts: set[str] = set()  # Host values that passed check_host (the runtime front's fast check)
        self._control = SageMakerDispatcher(registry)
        self._invoke = InvokeFront(registry.get, settings.invoke_timeout_seconds)
        self._async_invoke = AsyncFront(registry.get, self._invoke)
        self._athena = AthenaFront(lambda a, r: registry.get(a, r).athena)
        self._features = FeatureStoreRuntimeFront(lambda a, r: registry.get(a, r).feature_store.feature_records)
        self._lambda = LambdaFront(lambda a, r: registry.get(a, r).lambda_functions)
        self._emr = EmrFront(lambda a, r: registry.get(a, r).emr)
        account, region = settings.account_id, settings.region
        self._console = ConsoleApp(ConsoleApi(self._control, lambda: registry.get(account, region), account, region))
        self._metrics = MetricsFront(registry.get)
        self._mlflow = MlflowFront(lambda a, r: registry.get(a, r).mlflow_servers, settings.account_id)
        moto = DomainDispatcherApplication(create_backend_app)
        self._moto = DeferredFront(moto, registry, settings.account_id, settings.region)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        service = self._scope(environ, "service")
        try:
            check_host(environ, self._settings)
            if is_console_path(str(environ.get("PATH_INFO") or "")) and not environ.get("HTTP_X_AMZ_TARGET"):
                check_same_origin(environ)  # the console's pages and forms: same-origin only, never CORS
                return self._console(environ, start_response)
            origin = check_origin(environ, self._settings)
            declared_length(environ)
            if origin is not None and environ.get("REQUEST_METHOD") == "OPTIONS":
                return respond(start_response, 200, preflight_headers(environ, origin), b"")
            return self._route(environ, _with_cors(start_response, origin), service)
        except EdgeRefusal as refusal:
            return refusal_response(start_response, refusal, speaks_json(environ, service))

    def _route(self, environ: dict[str, Any], start_response: StartResponse, service: str | None) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
        path = str(environ.get("PATH_INFO") or "")
        if path == HEALTH_PATH and not target:
            return respond(start_response, 200, [("Content-Type", "application/json")], b'{"status": "running"}')
        prefix, _, operation = target.partition(".")
        if prefix == "SageMaker" or "sagemaker" in prefix.lower():
            return self._sagemaker(environ, start_response, operation if prefix == "SageMaker" else "")
        athena = athena_operation(target)
        if athena is not None:
            return self._athena_call(environ, start_response, athena)
        if is_emr_request(target, service):
            return self._emr_call(environ, start_response, target)
        if service == "lambda" or (service is None and LAMBDA_PATH.match(path)):
            return self._lambda_call(environ, start_response, path)
        if service in ("sagemaker", None) and is_featurestore_path(path):
            return self._featurestore(environ, start_response, path)
        if environ.get("REQUEST_METHOD") == "POST" and service in ("sagemaker", None):
            answered = self._runtime_call(environ, start_response, path)
            if answered is not None:
                return answered
        if service in ("sagemaker", None) and METRICS_PATHS.get(path, ("",))[0] == environ.get("REQUEST_METHOD"):
            return self._metrics_call(environ, start_response, path)
        if service == "sagemaker":
            return self._sagemaker(environ, start_response, "")
        if service == "sagemaker-mlflow":
            return self._mlflow_call(environ, start_response)
        self._authenticate(environ, None if service == "s3" else self._buffer_body(environ))
        result: Iterable[bytes] = self._moto(environ, start_response)
        return result

    def takes_invocation(self, environ: dict[str, Any]) -> bool:
        """Whether the runtime front may answer this InvokeEndpoint itself (edge/runtime_front.py): what ``__call__``
        would route to ``_invocations`` after its guards pass. A refusal, a browser and a request routed elsewhere
        are handed to the WSGI path, which answers them."""
        if environ.get("HTTP_ORIGIN") is not None or environ.get("HTTP_X_AMZ_TARGET"):
            return False
        if self._scope(environ, "service") not in ("sagemaker", None):
            return False
        host = str(environ.get("HTTP_HOST") or "")
        if host in self._served_hosts:
            return True
        try:
            check_host(environ, self._settings)
        except EdgeRefusal:
            return False
        if len(self._served_hosts) < _SERVED_HOSTS_KEPT:
            self._served_hosts.add(host)
        return True

    def relay_invocation(
        self,
        environ: dict[str, Any],
        call: tuple[str, bytes],
        relay: ContainerRelay,
        blocking: RunBlocking,
        answered: Answered,
    ) -> None:
        """An InvokeEndpoint the runtime front read (endpoint name, body): authenticated as ``_invocations`` does,
        then relayed; its reply goes to ``answered``."""
        name, body = call
        try:
            self._authenticate(environ, body)
        except EdgeRefusal as refusal:
            answered(Reply(*refusal_parts(refusal, speaks_json(environ, self._scope(environ, "service")))))
            return
        invocation = Invocation(name, self._settings.account_id, self._region(environ), body, environ)
        self._invoke.handle_relayed(invocation, relay, blocking, answered)

    def _runtime_call(
        self, environ: dict[str, Any], start_response: StartResponse, path: str
    ) -> Iterable[bytes] | None:
        """SageMaker Runtime's POST paths (InvokeEndpoint, InvokeEndpointAsync, the ones not served); else None."""
        match = INVOKE_PATH.match(path)
        if match is not None:
            return self._invocations(environ, start_response, unquote(match.group("name")))
        match = ASYNC_INVOKE_PATH.match(path)
        if match is not None:
            return self._invocations(environ, start_response, unquote(match.group("name")), asynchronous=True)
        runtime = _RUNTIME_PATH.match(path)
        if runtime is not None:
            return self._not_implemented(environ, start_response, _RUNTIME_OPERATIONS[runtime.group("kind")])
        return None

    def _scope(self, environ: dict[str, Any], part: str) -> str | None:
        scope = _CREDENTIAL_SCOPE.search(str(environ.get("HTTP_AUTHORIZATION") or ""))
        return scope.group(part) if scope else None

    def _region(self, environ: dict[str, Any]) -> str:
        return self._scope(environ, "region") or self._settings.region

    def _authenticate(self, environ: dict[str, Any], body: bytes | None) -> None:
        if self._auth_required:
            verify_signature(environ, body, self._settings.access_keys, self._settings.job_credentials)

    def _buffer_body(self, environ: dict[str, Any]) -> bytes | None:
        """Read a body moto will read anyway, so its signature can be checked; hand moto a copy."""
        if not self._auth_required:
            return None
        try:
            body = read_body(environ, self._settings.max_api_request_bytes)
        except BodyTooLarge as exc:
            raise EdgeRefusal(413, "RequestEntityTooLargeException", "Request body is too large.") from exc
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ.pop("wsgi.input_terminated", None)
        return body

    def _sagemaker(self, environ: dict[str, Any], start_response: StartResponse, operation: str) -> Iterable[bytes]:
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))]
        limit = self._settings.max_api_request_bytes
        try:
            body = read_body(environ, limit)
        except BodyTooLarge as exc:
            size = exc.length or f"more than {limit}"
            message = f"Request body of {size} bytes exceeds the maximum of {limit} bytes."
            raise EdgeRefusal(413, "ValidationException", message) from exc
        self._authenticate(environ, body)
        if not operation:
            target = environ.get("HTTP_X_AMZ_TARGET") or "(none)"
            unknown = UnknownOperationException(f"X-Amz-Target {target} names no SageMaker operation.")
            return respond(start_response, unknown.status, headers, json.dumps(unknown.to_body()).encode())
        status, answer = self._control.handle(operation, body, self._settings.account_id, self._region(environ))
        return respond(start_response, status, headers, json.dumps(answer).encode())

    def _metrics_call(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> Iterable[bytes]:
        """``sagemaker-metrics`` (rest-json, signed for ``sagemaker``): routed by its two paths."""
        limit = self._settings.max_api_request_bytes
        try:
            body = read_body(environ, limit)
        except BodyTooLarge as exc:
            raise EdgeRefusal(413, "ValidationException", "Request body is too large.") from exc
        self._authenticate(environ, body)
        if not is_chunked(environ):
            environ[KEEP_ALIVE] = True  # the whole body is read: the connection carries the next batch
        status, headers, answer = self._metrics.handle(path, body, self._settings.account_id, self._region(environ))
        return respond(start_response, status, headers, answer)

    def _mlflow_call(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """MLflow REST calls of the ``sagemaker-mlflow`` plugin, relayed to the tracking server its ARN names."""
        self._authenticate(environ, None)  # the payload hash as declared: the body streams through, as for S3
        length = int(str(environ.get("CONTENT_LENGTH") or 0) or 0)
        if (
            not is_chunked(environ)
            and length <= BUFFERED_BODY_BYTES
            and is_tracking_call(str(environ.get("PATH_INFO") or ""), environ.get(ARN_HEADER))
        ):
            environ[KEEP_ALIVE] = True  # the front reads the declared body whole: the connection carries the next call
        reply = self._mlflow.handle(environ)
        start_response(f"{reply.status} {reply.reason}", reply.headers)
        return reply.body

    def _invocations(
        self, environ: dict[str, Any], start_response: StartResponse, name: str, asynchronous: bool = False
    ) -> Iterable[bytes]:
        try:
            body = read_body(environ, MAX_PAYLOAD_BYTES)
        except BodyTooLarge as exc:
            environ[UNREAD_BODY] = exc.length
            reply = payload_too_large(exc.length)
            return respond(start_response, reply.status, reply.headers, reply.body)
        self._authenticate(environ, body)
        if not is_chunked(environ):
            environ[KEEP_ALIVE] = True
        call = Invocation(name, self._settings.account_id, self._region(environ), body, environ)
        reply = self._async_invoke.handle(call) if asynchronous else self._invoke.handle(call)
        return respond(start_response, reply.status, reply.headers, reply.body)

    def _athena_call(self, environ: dict[str, Any], start_response: StartResponse, operation: str) -> Iterable[bytes]:
        return self._json_call(
            environ,
            start_response,
            "InvalidRequestException",
            lambda body, region: self._athena.handle(operation, body, self._settings.account_id, region),
        )

    def _emr_call(self, environ: dict[str, Any], start_response: StartResponse, target: str) -> Iterable[bytes]:
        return self._json_call(
            environ,
            start_response,
            "ValidationException",
            lambda body, region: self._emr.handle(target, body, self._settings.account_id, region),
        )

    def _json_call(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        too_large_code: str,
        answer: Callable[[bytes, str], tuple[int, dict[str, Any]]],
    ) -> Iterable[bytes]:
        """A JSON-protocol service of our own (Athena, EMR): read and authenticate the body, answer, respond."""
        try:
            body = read_body(environ, self._settings.max_api_request_bytes)
        except BodyTooLarge as exc:
            raise EdgeRefusal(413, too_large_code, "Request body is too large.") from exc
        self._authenticate(environ, body)
        status, document = answer(body, self._region(environ))
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))]
        return respond(start_response, status, headers, json.dumps(document, default=str).encode())

    def _featurestore(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> Iterable[bytes]:
        try:
            body = read_body(environ, MAX_REQUEST_BYTES)
        except BodyTooLarge as exc:
            raise EdgeRefusal(413, "ValidationError", "Request body is too large.") from exc
        self._authenticate(environ, body)
        if not is_chunked(environ):
            environ[KEEP_ALIVE] = True
        method, query = str(environ.get("REQUEST_METHOD") or "GET"), str(environ.get("QUERY_STRING") or "")
        request = RuntimeRequest(method, path, query, body, self._settings.account_id, self._region(environ))
        reply = self._features.handle(request)
        return respond(start_response, reply.status, reply.headers, reply.body)

    def _lambda_call(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> Iterable[bytes]:
        try:
            body = read_body(environ, self._settings.max_api_request_bytes)
        except BodyTooLarge as exc:
            raise EdgeRefusal(413, "RequestTooLargeException", "Request must be smaller than the limit.") from exc
        self._authenticate(environ, body)
        method = str(environ.get("REQUEST_METHOD") or "GET")
        headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        reply = self._lambda.handle(method, path, headers, body, self._settings.account_id, self._region(environ))
        return respond(start_response, reply.status, reply.headers, reply.body)

    def _not_implemented(
        self, environ: dict[str, Any], start_response: StartResponse, operation: str
    ) -> Iterable[bytes]:
        try:
            body = read_body(environ, MAX_PAYLOAD_BYTES)
        except BodyTooLarge as exc:
            reply = payload_too_large(exc.length)
        else:
            self._authenticate(environ, body)
            reply = runtime_not_implemented(operation)
        return respond(start_response, reply.status, reply.headers, reply.body)


def _with_cors(start_response: StartResponse, origin: str | None) -> StartResponse:
    if origin is None:
        return start_response

    def with_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*headers, *cors_headers(origin)], exc_info)

    return with_headers
