"""SageMaker Runtime ``InvokeEndpoint`` (rest-json): route to a variant's container and relay its answer."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ReadTimeoutError

from infra.control_plane.core.aws_services import LogsAccess
from infra.control_plane.core.errors import (
    InternalFailure,
    ModelError,
    RuntimeValidationError,
    ServiceError,
    UnknownOperationException,
)
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.hosting.data_capture import CaptureConfig, Captured, CaptureWriter
from infra.control_plane.hosting.endpoint_deployer import Deployment, Instance, Variant, connection_pool
from infra.control_plane.hosting.endpoints import Endpoints

logger = logging.getLogger(__name__)


class HostingBackend(Protocol):
    """What InvokeEndpoint needs of one account/region's backend."""

    endpoints: Endpoints
    capture: CaptureWriter
    logs: LogsAccess


BackendLookup = Callable[[str, str], HostingBackend]  # (account id, region) -> that backend

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
_FORWARDED = {
    "HTTP_ACCEPT": "Accept",
    "HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES": "X-Amzn-SageMaker-Custom-Attributes",
    "HTTP_X_AMZN_SAGEMAKER_TARGET_MODEL": "X-Amzn-SageMaker-Target-Model",
    "HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID": "X-Amzn-SageMaker-Inference-Id",
}


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Invocation:
    endpoint: str
    account_id: str
    region: str
    body: bytes
    environ: Mapping[str, object]


class InvokeFront:
    def __init__(self, backends: BackendLookup, timeout_seconds: float) -> None:
        self._backends = backends
        self._timeout = urllib3.Timeout(connect=5.0, read=timeout_seconds)
        self._replacement_wait = timeout_seconds  # a call never waits longer for a new server than for an answer

    def handle(self, call: Invocation) -> Reply:
        try:
            return self._invoke(call)
        except ServiceError as exc:
            return _error(exc)
        except Exception as exc:
            logger.exception("InvokeEndpoint %s failed", call.endpoint)
            return _error(InternalFailure(f"Internal error: {type(exc).__name__}"))

    def _invoke(self, call: Invocation) -> Reply:
        if len(call.body) > MAX_PAYLOAD_BYTES:
            return payload_too_large(len(call.body))
        backend = self._backends(call.account_id, call.region)
        deployment = self._deployment(backend, call)
        target = _header(call.environ, "HTTP_X_AMZN_SAGEMAKER_TARGET_VARIANT")
        variant = deployment.choose(target)
        if variant is None or not variant.instances:
            raise RuntimeValidationError(f"Variant {target} does not exist for endpoint {call.endpoint}.")
        reply = self._forward(call, deployment, variant)
        reply.headers.append(("x-Amzn-Invoked-Production-Variant", variant.name))
        if deployment.capture is not None and deployment.capture.sampled():
            backend.capture.record(_captured(call, deployment.capture, variant.name, reply))
        return reply

    @staticmethod
    def _deployment(backend: HostingBackend, call: Invocation) -> Deployment:
        endpoint = backend.endpoints.store.peek(call.endpoint)
        deployment = endpoint.deployment if endpoint is not None else None
        if deployment is None:
            raise RuntimeValidationError(f"Endpoint {call.endpoint} of account {call.account_id} not found.")
        return deployment

    def _forward(self, call: Invocation, deployment: Deployment, variant: Variant) -> Reply:
        """POST to an instance of the variant; a connection failure is retried on a fresh connection.

        The retry covers a kept-alive connection the container closed (it answered an error without reading the
        body, or restarted) and an instance that just died: the retry goes to a live instance when there is one.
        When none is live (a single instance whose server died), a request that could not even connect waits for
        the supervisor's replacement, at most the invocation timeout, and is sent to it
        (docs/local-stack.md#processes-and-disk).
        A read timeout is never retried (the container may still be working on the request).
        """
        headers = {"Content-Type": _header(call.environ, "CONTENT_TYPE") or "application/octet-stream"}
        for key, name in _FORWARDED.items():
            value = _header(call.environ, key)
            if value is not None:
                headers[name] = value
        instance = variant.pick()
        try:
            try:
                response = self._post(instance.pool, call.body, headers)
            except ReadTimeoutError:
                raise
            except HTTPError as exc:
                logger.info("InvokeEndpoint %s: %s; retrying on a fresh connection", call.endpoint, exc)
                instance, response = self._retry(call, deployment, variant, instance, headers)
        except ReadTimeoutError as exc:
            raise self._model_error(call, deployment, instance, 0, _TIMEOUT_MESSAGE) from exc
        except HTTPError as exc:
            raise self._model_error(call, deployment, instance, 0, f"Container not reachable: {exc}") from exc
        if response.status >= 400:
            message = response.data.decode("utf-8", errors="replace")
            raise self._model_error(call, deployment, instance, response.status, message)
        out = [("Content-Type", response.headers.get("Content-Type", "application/octet-stream"))]
        custom = response.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if custom is not None:
            out.append(("X-Amzn-SageMaker-Custom-Attributes", custom))
        return Reply(200, out, response.data)

    def _retry(
        self, call: Invocation, deployment: Deployment, variant: Variant, instance: Instance, headers: dict[str, str]
    ) -> tuple[Instance, urllib3.BaseHTTPResponse]:
        """The retry on a fresh connection, and the wait for a replacement when no server takes the connection."""
        if not instance.container.is_alive():
            deployment.dead_seen.set()
            instance = variant.pick()
        try:
            with connection_pool(instance.container.url) as fresh:
                return instance, self._post(fresh, call.body, headers)
        except NewConnectionError:  # nothing was delivered: safe to send again, once a server listens
            deployment.dead_seen.set()
            live = variant.wait_live(self._replacement_wait, deployment.stopped)
            if live is None:
                raise
        logger.info("InvokeEndpoint %s: sent to the replacement of a dead server", call.endpoint)
        with connection_pool(live.container.url) as fresh:
            return live, self._post(fresh, call.body, headers)

    def _post(self, pool: urllib3.HTTPConnectionPool, body: bytes, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        return pool.urlopen("POST", "/invocations", body=body, headers=headers, timeout=self._timeout, retries=False)

    def _model_error(
        self, call: Invocation, deployment: Deployment, instance: Instance, status: int, message: str
    ) -> ModelError:
        backend = self._backends(call.account_id, call.region)
        arn = backend.logs.stream_arn(deployment.log_group, instance.log_stream)
        kind = "client" if 400 <= status < 500 else "server"
        text = (
            f'Received {kind} error ({status}) from primary with message "{message}". '
            f"See the log stream {instance.log_stream} in log group {deployment.log_group} for more information."
        )
        return ModelError(text, status, message, arn)


_TIMEOUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container primary. Review the latency "
    "metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)


def _captured(call: Invocation, config: CaptureConfig, variant: str, reply: Reply) -> Captured:
    return Captured(
        endpoint=call.endpoint,
        variant=variant,
        config=config,
        request_type=_header(call.environ, "CONTENT_TYPE") or "application/octet-stream",
        request=call.body,
        response_type=reply.headers[0][1],
        response=reply.body,
        inference_id=_header(call.environ, "HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID"),
        custom_attributes=_header(call.environ, "HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES"),
        time=utcnow(),
    )


def _header(environ: Mapping[str, object], key: str) -> str | None:
    value = environ.get(key)
    return str(value) if value is not None and value != "" else None


def payload_too_large(length: int | None) -> Reply:
    """The answer to a body over the limit; the edge sends it before reading the body (``length`` as declared)."""
    size = f"of {length} bytes" if length is not None else "(chunked)"
    return _error(RuntimeValidationError(f"Request payload {size} exceeds the maximum of {MAX_PAYLOAD_BYTES} bytes."))


def runtime_not_implemented(operation: str) -> Reply:
    return _error(UnknownOperationException(f"{operation} is not implemented by the Sagestack local control plane."))


def _error(exc: ServiceError) -> Reply:
    body = exc.to_body()
    body.pop("__type", None)
    return Reply(
        exc.status,
        [("Content-Type", "application/json"), ("x-amzn-ErrorType", exc.code), ("x-amzn-RequestId", str(uuid.uuid4()))],
        json.dumps(body).encode(),
    )
