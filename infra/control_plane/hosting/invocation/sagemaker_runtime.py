"""SageMaker Runtime ``InvokeEndpoint`` (rest-json): route to a variant's container and relay its answer."""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, cast

import urllib3

from infra.control_plane.core.aws_services import LogsAccess
from infra.control_plane.core.errors import (
    InternalFailure,
    ModelError,
    RuntimeValidationError,
    ServiceError,
    ServiceUnavailable,
    UnknownOperationException,
)
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.hosting.data_capture import CaptureConfig, Captured, CaptureWriter
from infra.control_plane.hosting.endpoint_deployer import Deployment, DeploymentError, Instance, Variant
from infra.control_plane.hosting.endpoints import Endpoints
from infra.control_plane.hosting.invocation.container_relay import ContainerRelay, RelayedAnswer
from infra.control_plane.hosting.invocation.invocation_metrics import InvocationMetrics
from infra.control_plane.hosting.serving_chain import HopFailed, ServingProcess, invoke_in_series

logger = logging.getLogger(__name__)


class HostingBackend(Protocol):
    """What InvokeEndpoint needs of one account/region's backend."""

    endpoints: Endpoints
    capture: CaptureWriter
    logs: LogsAccess
    invocation_metrics: InvocationMetrics


BackendLookup = Callable[[str, str], HostingBackend]  # (account id, region) -> that backend
Answered = Callable[["Reply"], None]  # takes a call's reply on the runtime front's event loop
RunBlocking = Callable[[Callable[[], "Reply"], Answered], None]  # a blocking call run off the loop, reply to 2nd

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
_REPLACEMENT_POLL_SECONDS = 0.02  # between attempts to reach a replaced server


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


@dataclass(frozen=True)
class ModelRequest:
    """One request for an endpoint's model, from InvokeEndpoint's headers or an asynchronous request's."""

    endpoint: str
    body: bytes
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    inference_id: str | None = None
    target_model: str | None = None
    target_variant: str | None = None
    target_container: str | None = None
    timeout_seconds: float | None = None  # an asynchronous request's InvocationTimeoutSeconds

    @classmethod
    def from_environ(cls, call: Invocation) -> ModelRequest:
        """The request's headers as the WSGI environ names them (str values; an empty one counts as absent)."""
        header = cast("Callable[[str], str | None]", call.environ.get)
        return cls(
            call.endpoint,
            call.body,
            header("CONTENT_TYPE") or None,
            header("HTTP_ACCEPT") or None,
            header("HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES") or None,
            header("HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID") or None,
            header("HTTP_X_AMZN_SAGEMAKER_TARGET_MODEL") or None,
            header("HTTP_X_AMZN_SAGEMAKER_TARGET_VARIANT") or None,
            header("HTTP_X_AMZN_SAGEMAKER_TARGET_CONTAINER_HOSTNAME") or None,
        )

    def container_headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type or "application/octet-stream"}
        if self.accept is not None:
            headers["Accept"] = self.accept
        if self.custom_attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = self.custom_attributes
        if self.inference_id is not None:
            headers["X-Amzn-SageMaker-Inference-Id"] = self.inference_id
        return headers


class InvokeFront:
    def __init__(self, backends: BackendLookup, timeout_seconds: float) -> None:
        self._backends = backends
        self._timeout = urllib3.Timeout(connect=5.0, read=timeout_seconds)
        self._read = timeout_seconds
        self._replacement_wait = timeout_seconds  # a call never waits longer for a new server than for an answer

    def handle(self, call: Invocation) -> Reply:
        try:
            if len(call.body) > MAX_PAYLOAD_BYTES:
                return payload_too_large(len(call.body))
            backend = self._backends(call.account_id, call.region)
            return self.invoke(backend, ModelRequest.from_environ(call))
        except ServiceError as exc:
            return error_reply(exc)
        except Exception as exc:
            return _internal_failure(call.endpoint, exc)

    def handle_relayed(
        self, call: Invocation, relay: ContainerRelay, blocking: RunBlocking, answered: Answered
    ) -> None:
        """``handle`` on the runtime front's event loop, its reply to ``answered`` (now, or from the container's
        answer): a real-time endpoint's containers are reached through ``relay``; a call that may wait (a serverless
        variant, a multi-model load, a dead server's replacement) runs ``handle`` through ``blocking``, on a thread
        (docs/performance.md#the-runtime-front)."""
        try:
            if len(call.body) > MAX_PAYLOAD_BYTES:
                answered(payload_too_large(len(call.body)))
                return
            backend = self._backends(call.account_id, call.region)
            request = ModelRequest.from_environ(call)
            hop = self._relayed_hop(backend, request)
        except ServiceError as exc:
            answered(error_reply(exc))
            return
        except Exception as exc:
            answered(_internal_failure(call.endpoint, exc))
            return
        if hop is None:
            blocking(lambda: self.handle(call), answered)
            return
        delivered = functools.partial(self._relayed_answer, call, backend, request, hop, (blocking, answered))
        relay.send(hop.processes, request.body, request.container_headers(), self._read, hop.path, delivered)

    def invoke(self, backend: HostingBackend, request: ModelRequest) -> Reply:
        """Route ``request`` to a variant's instance and relay its answer (``ServiceError`` for every failure)."""
        deployment, variant = self._target(backend, request)
        admitted = variant.serverless.admitted(request.endpoint) if variant.serverless else nullcontext()
        started, instances = time.perf_counter(), len(variant.instances)
        with admitted:
            try:
                reply, model_seconds = self._forward(backend, request, deployment, variant)
            except ModelError as exc:
                _count_failure(backend, request.endpoint, variant, exc, started, instances)
                raise
        return self._answered(backend, request, deployment, variant, (reply, model_seconds, started, instances))

    def _relayed_hop(self, backend: HostingBackend, request: ModelRequest) -> _RelayedHop | None:
        """Where ``invoke`` sends ``request`` through the relay; None when the call must take the blocking path."""
        deployment, variant = self._target(backend, request)
        if variant.serverless is not None:
            return None
        instance = variant.pick()
        if instance.models is not None or not instance.is_alive():
            return None
        processes, path = self._route(request, instance)
        return _RelayedHop(deployment, variant, instance, processes, path, time.perf_counter())

    def _relayed_answer(
        self,
        call: Invocation,
        backend: HostingBackend,
        request: ModelRequest,
        hop: _RelayedHop,
        waiting: tuple[RunBlocking, Answered],
        outcome: RelayedAnswer | HopFailed,
    ) -> None:
        """The relay's outcome as ``invoke`` answers it; a server that took no connection (nothing was delivered)
        sends the call down the blocking path, which waits for its replacement."""
        blocking, answered = waiting
        instances = len(hop.variant.instances)
        try:
            if isinstance(outcome, HopFailed):
                if outcome.connect_failed:
                    blocking(lambda: self.handle(call), answered)
                    return
                error = self._model_error(backend, hop.deployment, hop.instance, outcome)
                _count_failure(backend, request.endpoint, hop.variant, error, hop.started, instances)
                reply = error_reply(error)
            else:
                model_seconds = time.perf_counter() - hop.started
                custom = outcome.headers.get("x-amzn-sagemaker-custom-attributes")
                reply = _model_reply(outcome.headers.get("content-type"), custom, outcome.body)
                done = (reply, model_seconds, hop.started, instances)
                reply = self._answered(backend, request, hop.deployment, hop.variant, done)
        except ServiceError as exc:
            reply = error_reply(exc)
        except Exception as exc:
            reply = _internal_failure(request.endpoint, exc)
        answered(reply)

    def _target(self, backend: HostingBackend, request: ModelRequest) -> tuple[Deployment, Variant]:
        deployment = _deployment(backend, request.endpoint, backend.endpoints.account_id)
        variant = deployment.choose(request.target_variant)
        if variant is None or not variant.serves:
            raise RuntimeValidationError(
                f"Variant {request.target_variant} does not exist for endpoint {request.endpoint}."
            )
        return deployment, variant

    def _answered(
        self,
        backend: HostingBackend,
        request: ModelRequest,
        deployment: Deployment,
        variant: Variant,
        done: tuple[Reply, float, float, int],
    ) -> Reply:
        """Count a served call (metrics), name its variant, capture it when sampled."""
        reply, model_seconds, started, instances = done
        total_seconds = time.perf_counter() - started
        backend.invocation_metrics.record(request.endpoint, variant.name, 200, model_seconds, total_seconds, instances)
        reply.headers.append(("x-Amzn-Invoked-Production-Variant", variant.name))
        if deployment.capture is not None and deployment.capture.sampled():
            backend.capture.record(_captured(request, deployment.capture, variant.name, reply))
        return reply

    def _forward(
        self, backend: HostingBackend, request: ModelRequest, deployment: Deployment, variant: Variant
    ) -> tuple[Reply, float]:
        """The container's answer and the seconds the containers took (``ModelLatency``)."""
        try:
            instance = variant.pick()
        except DeploymentError as exc:  # a serverless variant's cold start failed
            raise ServiceUnavailable(f"The model of endpoint {request.endpoint} could not be started: {exc}") from exc
        try:
            processes, path = self._route(request, instance)
            timeout = self._timeout
            if request.timeout_seconds is not None:
                timeout = urllib3.Timeout(connect=5.0, read=request.timeout_seconds)
            model_started = time.perf_counter()
            deadline = model_started + self._replacement_wait
            while True:
                try:
                    response = invoke_in_series(processes, request.body, request.container_headers(), timeout, path)
                    break
                except HopFailed as exc:
                    if not exc.connect_failed or time.perf_counter() >= deadline:
                        raise
                    instance, processes, path = self._replacement(request, deployment, variant, exc, deadline)
            model_seconds = time.perf_counter() - model_started
        except HopFailed as exc:
            if exc.status == 404 and instance.models is not None and request.target_model:
                instance.models.forget(request.target_model)  # the container lost it: loaded again next time
            raise self._model_error(backend, deployment, instance, exc) from exc
        headers = response.headers
        custom = headers.get("X-Amzn-SageMaker-Custom-Attributes")
        return _model_reply(headers.get("Content-Type"), custom, response.data), model_seconds

    def _replacement(
        self, request: ModelRequest, deployment: Deployment, variant: Variant, failure: HopFailed, deadline: float
    ) -> tuple[Instance, list[ServingProcess], str]:
        """No server took the connection (nothing was delivered): wake the supervisor and wait, until ``deadline``
        (the invocation timeout), for a live instance to send the request to again
        (docs/local-stack.md#processes-and-disk). A killed server not yet reaped still looks alive for a moment,
        so the caller's next attempt may be refused again: it comes back here after a short pause."""
        deployment.dead_seen.set()
        live = variant.wait_live(max(0.0, deadline - time.perf_counter()), deployment.stopped)
        if live is None or deployment.stopped.wait(_REPLACEMENT_POLL_SECONDS):
            raise failure
        logger.info("InvokeEndpoint %s: sending again to a live server", request.endpoint)
        processes, path = self._route(request, live)
        return live, processes, path

    def _route(self, request: ModelRequest, instance: Instance) -> tuple[list[ServingProcess], str]:
        """The containers a request goes through and the last one's path (multi-model, Direct, or in series)."""
        if instance.models is None and request.target_model:
            raise RuntimeValidationError(
                f"Endpoint {request.endpoint} is not a multi-model endpoint and does not support target model header."
            )
        if instance.models is not None:
            if not request.target_model:
                raise RuntimeValidationError(f"Request {uuid.uuid4()} is missing a target model header.")
            return list(instance.processes), instance.models.invoke_path(request.target_model)
        if instance.direct:
            chosen = [p for p in instance.processes if p.hostname == request.target_container]
            if not chosen:
                names = ", ".join(p.hostname for p in instance.processes)
                raise RuntimeValidationError(
                    f"TargetContainerHostname {request.target_container} is not one of the containers ({names}) of "
                    f"endpoint {request.endpoint}."
                )
            return chosen, "/invocations"
        return list(instance.processes), "/invocations"

    def _model_error(
        self, backend: HostingBackend, deployment: Deployment, instance: Instance, exc: HopFailed
    ) -> ModelError:
        arn = backend.logs.stream_arn(deployment.log_group, instance.log_stream)
        if exc.timed_out:
            return ModelError(_TIMEOUT_MESSAGE.format(container=exc.hostname), 0, exc.message, arn)
        text = (
            f"{_hop_message(exc, exc.hostname)} See the log stream {instance.log_stream} in log group "
            f"{deployment.log_group} for more information."
        )
        return ModelError(text, exc.status, exc.message, arn)


class _RelayedHop(NamedTuple):
    """Where a relayed call went, and when."""

    deployment: Deployment
    variant: Variant
    instance: Instance
    processes: list[ServingProcess]
    path: str
    started: float


def _internal_failure(endpoint: str, exc: Exception) -> Reply:
    logger.error("InvokeEndpoint %s failed", endpoint, exc_info=exc)
    return error_reply(InternalFailure(f"Internal error: {type(exc).__name__}"))


def _deployment(backend: HostingBackend, name: str, account_id: str) -> Deployment:
    endpoint = backend.endpoints.store.peek(name)  # a lookup: the record is not marked for the next write
    deployment = endpoint.deployment if endpoint is not None else None
    if deployment is None:
        raise RuntimeValidationError(f"Endpoint {name} of account {account_id} not found.")
    return deployment


def _model_reply(content_type: str | None, custom_attributes: str | None, body: bytes) -> Reply:
    headers = [("Content-Type", content_type or "application/octet-stream")]
    if custom_attributes is not None:
        headers.append(("X-Amzn-SageMaker-Custom-Attributes", custom_attributes))
    return Reply(200, headers, body)


def _count_failure(
    backend: HostingBackend, endpoint: str, variant: Variant, exc: ModelError, started: float, instances: int
) -> None:
    status = exc.original_status if exc.original_status >= 400 else 500
    seconds = time.perf_counter() - started
    backend.invocation_metrics.record(endpoint, variant.name, status, None, seconds, instances)


def _hop_message(exc: HopFailed, source: str) -> str:
    kind = "client" if 400 <= exc.status < 500 else "server"
    return f'Received {kind} error ({exc.status}) from {source} with message "{exc.message}".'


_TIMEOUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container {container}. Review the latency "
    "metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)


def _captured(request: ModelRequest, config: CaptureConfig, variant: str, reply: Reply) -> Captured:
    return Captured(
        endpoint=request.endpoint,
        variant=variant,
        config=config,
        request_type=request.content_type or "application/octet-stream",
        request=request.body,
        response_type=reply.headers[0][1],
        response=reply.body,
        inference_id=request.inference_id,
        custom_attributes=request.custom_attributes,
        time=utcnow(),
    )


def payload_too_large(length: int | None) -> Reply:
    """The answer to a body over the limit; the edge sends it before reading the body (``length`` as declared)."""
    size = f"of {length} bytes" if length is not None else "(chunked)"
    return error_reply(
        RuntimeValidationError(f"Request payload {size} exceeds the maximum of {MAX_PAYLOAD_BYTES} bytes.")
    )


def runtime_not_implemented(operation: str) -> Reply:
    return error_reply(
        UnknownOperationException(f"{operation} is not implemented by the Sagestack local control plane.")
    )


def error_reply(exc: ServiceError) -> Reply:
    body = exc.to_body()
    body.pop("__type", None)
    return Reply(
        exc.status,
        [("Content-Type", "application/json"), ("x-amzn-ErrorType", exc.code), ("x-amzn-RequestId", str(uuid.uuid4()))],
        json.dumps(body).encode(),
    )
