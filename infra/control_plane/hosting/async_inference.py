"""SageMaker Runtime ``InvokeEndpointAsync`` (docs/deploy.md#asynchronous-inference).

A request names its input (``InputLocation`` in S3, or an inline ``Body`` of at most 128,000 bytes) and is answered
at once (202, ``InferenceId``, ``OutputLocation``, ``FailureLocation``). It waits in its endpoint's queue; up to
``MaxConcurrentInvocationsPerInstance`` x instances requests run at once, each through the same path as
InvokeEndpoint. The answer is written to ``<S3OutputPath>/<InferenceId>.out``, a failure to
``<S3FailurePath>/<InferenceId>-error.out``, and the endpoint config's success or error SNS topic gets AWS's
notification message. The queue is bounded and lives in memory: requests still queued when the stack stops are lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from moto.backends import get_backend

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.core.errors import (
    InternalFailure,
    RuntimeValidationError,
    ServiceError,
    ServiceUnavailable,
)
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.hosting.hosting_requests import AsyncInferenceConfig
from infra.control_plane.hosting.invocation.sagemaker_runtime import (
    BackendLookup,
    HostingBackend,
    Invocation,
    InvokeFront,
    ModelRequest,
    Reply,
    error_reply,
)

logger = logging.getLogger(__name__)

__all__ = ["AsyncFront"]

MAX_INLINE_BODY_BYTES = 128_000
MAX_QUEUED_PER_ENDPOINT = 1000  # a request beyond it is refused with ServiceUnavailable (nothing queues unbounded)
DEFAULT_CONCURRENCY_PER_INSTANCE = 4
DEFAULT_TTL_SECONDS = 6 * 3600  # AWS's default RequestTTLSeconds
DEFAULT_INVOCATION_TIMEOUT_SECONDS = 15 * 60  # AWS's default InvocationTimeoutSeconds


@dataclass(frozen=True)
class _Job:
    request: ModelRequest
    input_location: str | None
    output: S3Location
    failure: S3Location | None
    config: AsyncInferenceConfig
    account_id: str
    region: str
    received: float = field(default_factory=time.monotonic)
    received_at: str = field(default_factory=lambda: utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
    ttl_seconds: int = DEFAULT_TTL_SECONDS


@dataclass
class _EndpointQueue:
    jobs: deque[_Job] = field(default_factory=deque)
    running: int = 0


class AsyncFront:
    """Accepts asynchronous requests and runs them in the background, endpoint by endpoint."""

    def __init__(self, backends: BackendLookup, invoke: InvokeFront) -> None:
        self._backends = backends
        self._invoke = invoke
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str, str], _EndpointQueue] = {}

    def handle(self, call: Invocation) -> Reply:
        try:
            return self._accept(call)
        except ServiceError as exc:
            return error_reply(exc)
        except Exception as exc:
            logger.exception("InvokeEndpointAsync %s failed", call.endpoint)
            return error_reply(InternalFailure(f"Internal error: {type(exc).__name__}"))

    def _accept(self, call: Invocation) -> Reply:
        backend = self._backends(call.account_id, call.region)
        config = _async_config(backend, call.endpoint, call.account_id)
        job = _job(call, config, S3Access(call.account_id))
        key = (call.account_id, call.region, call.endpoint)
        with self._lock:
            queue = self._queues.setdefault(key, _EndpointQueue())
            if len(queue.jobs) >= MAX_QUEUED_PER_ENDPOINT:
                raise ServiceUnavailable(
                    f"Endpoint {call.endpoint} has {len(queue.jobs)} asynchronous requests queued; retry later."
                )
            queue.jobs.append(job)
            start = queue.running < _concurrency(backend, call.endpoint, config)
            if start:
                queue.running += 1
        if start:
            threading.Thread(target=self._drain, args=(key,), name="sagestack-async-inference", daemon=True).start()
        headers = [("Content-Type", "application/json"), ("X-Amzn-SageMaker-OutputLocation", job.output.uri)]
        if job.failure is not None:
            headers.append(("X-Amzn-SageMaker-FailureLocation", job.failure.uri))
        return Reply(202, headers, json.dumps({"InferenceId": job.request.inference_id}).encode())

    def _drain(self, key: tuple[str, str, str]) -> None:
        """One of an endpoint's runners: takes queued requests until there are none."""
        while True:
            with self._lock:
                queue = self._queues[key]
                if not queue.jobs:
                    queue.running -= 1
                    if queue.running == 0:
                        del self._queues[key]
                    return
                job = queue.jobs.popleft()
            try:  # the runner must survive anything, or the endpoint's queue would stall
                _Run(job, self._backends(job.account_id, job.region), self._invoke).run()
            except Exception:
                logger.exception("asynchronous inference %s: could not record its end", job.request.inference_id)


@dataclass
class _Run:
    job: _Job
    backend: HostingBackend
    invoke: InvokeFront

    def run(self) -> None:
        job, s3 = self.job, S3Access(self.job.account_id)
        try:
            reply = self._invoke(s3)
            s3.put_bytes(job.output, reply.body)
        except ServiceError as exc:
            self._failed(s3, exc.message)
            return
        except S3AccessError as exc:
            self._failed(s3, f"ClientError: {exc}")
            return
        except Exception as exc:  # a defect of ours: the request still ends, failed, where the user looks
            logger.exception("asynchronous inference %s crashed", job.request.inference_id)
            self._failed(s3, f"InternalFailure: {type(exc).__name__}")
            return
        content_type = dict(reply.headers).get("Content-Type", "application/octet-stream")
        logger.info("asynchronous inference %s: written to %s", job.request.inference_id, job.output.uri)
        self._notify(True, {"contentType": content_type, "outputLocation": job.output.uri}, reply.body)

    def _invoke(self, s3: S3Access) -> Reply:
        job = self.job
        if time.monotonic() - job.received > job.ttl_seconds:
            raise RuntimeValidationError(f"The request expired after its RequestTTLSeconds of {job.ttl_seconds}.")
        body = job.request.body
        if job.input_location is not None:
            try:
                body = s3.get_bytes(S3Location.parse(job.input_location))
            except S3AccessError as exc:
                raise RuntimeValidationError(f"Could not read the InputLocation {job.input_location}: {exc}") from exc
        return self.invoke.invoke(self.backend, replace(job.request, body=body))

    def _failed(self, s3: S3Access, reason: str) -> None:
        job = self.job
        logger.warning("asynchronous inference %s failed: %s", job.request.inference_id, reason)
        parameters: dict[str, Any] = {"contentType": "text/plain"}
        if job.failure is not None:
            try:
                s3.put_bytes(job.failure, reason.encode("utf-8"))
                parameters["failureLocation"] = job.failure.uri
            except S3AccessError:
                logger.exception("asynchronous inference: could not write %s", job.failure.uri)
        self._notify(False, parameters, reason.encode("utf-8"), reason)

    def _notify(self, success: bool, response: dict[str, Any], body: bytes, reason: str | None = None) -> None:
        job = self.job
        notification = job.config.output_config.notification_config
        topic = (notification.success_topic if success else notification.error_topic) if notification else None
        if notification is None or not topic:
            return
        message: dict[str, Any] = {
            "awsRegion": job.region,
            "eventTime": utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "receivedTime": job.received_at,
            "invocationStatus": "Completed" if success else "Failed",
            "requestParameters": {
                "accept": job.request.accept or "*/*",
                "contentType": job.request.content_type or "application/octet-stream",
                "customAttributes": job.request.custom_attributes or "-",
                "endpointName": job.request.endpoint,
                "inputLocation": job.input_location or "-",
            },
            "responseParameters": response,
            "inferenceId": job.request.inference_id,
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
        }
        if reason is not None:
            message["failureReason"] = reason
        wanted = "SUCCESS_NOTIFICATION_TOPIC" if success else "ERROR_NOTIFICATION_TOPIC"
        if wanted in notification.include_inference_response_in:
            message["responseBody"] = {"content": body.decode("utf-8", errors="replace"), "encoding": "TEXT"}
        _publish(topic, json.dumps(message), job.account_id)


def _publish(topic_arn: str, message: str, account_id: str) -> None:
    """Publish to moto's SNS (the topic's own account and region, from its ARN); a missing topic is logged."""
    parts = topic_arn.split(":")
    region, account = (parts[3], parts[4]) if len(parts) >= 6 else ("", account_id)
    try:
        get_backend("sns")[account][region].publish(message, topic_arn)
    except Exception:  # moto raises its own NotFound/InvalidParameter types
        logger.warning("asynchronous inference: could not publish to %s", topic_arn, exc_info=True)


def _async_config(backend: HostingBackend, name: str, account_id: str) -> AsyncInferenceConfig:
    endpoint = backend.endpoints.store.find(name)
    if endpoint is None or endpoint.deployment is None:
        raise RuntimeValidationError(f"Endpoint {name} of account {account_id} not found.")
    config = backend.endpoints.config_of(endpoint)
    found = config.request.async_inference_config if config is not None else None
    if found is None:
        raise RuntimeValidationError(
            f"Endpoint {name} is not configured for asynchronous inference (no AsyncInferenceConfig)."
        )
    return found


def _concurrency(backend: HostingBackend, name: str, config: AsyncInferenceConfig) -> int:
    endpoint = backend.endpoints.store.find(name)
    deployment = endpoint.deployment if endpoint is not None else None
    instances = sum(len(v.instances) for v in deployment.variants) if deployment is not None else 1
    per_instance = config.client_config.max_concurrent_invocations_per_instance or DEFAULT_CONCURRENCY_PER_INSTANCE
    return max(1, per_instance * max(1, instances))


def _job(call: Invocation, config: AsyncInferenceConfig, s3: S3Access) -> _Job:
    """Parse and check the request's headers; the input must exist when the request is accepted."""
    header: Callable[[str], str | None] = lambda key: _header(call.environ, key)  # noqa: E731
    input_location = header("HTTP_X_AMZN_SAGEMAKER_INPUTLOCATION")
    if input_location and call.body:
        raise RuntimeValidationError("Specify either InputLocation or Body, not both.")
    if not input_location and not call.body:
        raise RuntimeValidationError("InputLocation (or an inline Body) is required.")
    if len(call.body) > MAX_INLINE_BODY_BYTES:
        raise RuntimeValidationError(f"Body exceeds the maximum of {MAX_INLINE_BODY_BYTES} bytes; use InputLocation.")
    if input_location:
        _check_input(s3, input_location)
    inference_id = header("HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID") or str(uuid.uuid4())
    request = ModelRequest(
        endpoint=call.endpoint,
        body=call.body,
        content_type=header("HTTP_X_AMZN_SAGEMAKER_CONTENT_TYPE"),
        accept=header("HTTP_X_AMZN_SAGEMAKER_ACCEPT"),
        custom_attributes=header("HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES"),
        inference_id=inference_id,
        timeout_seconds=_int_header(call.environ, "HTTP_X_AMZN_SAGEMAKER_INVOCATIONTIMEOUTSECONDS")
        or DEFAULT_INVOCATION_TIMEOUT_SECONDS,
    )
    output, failure = _locations(call.environ, config, inference_id)
    ttl = _int_header(call.environ, "HTTP_X_AMZN_SAGEMAKER_REQUESTTTLSECONDS") or DEFAULT_TTL_SECONDS
    return _Job(request, input_location, output, failure, config, call.account_id, call.region, ttl_seconds=ttl)


def _check_input(s3: S3Access, input_location: str) -> None:
    try:
        location = S3Location.parse(input_location)
        s3.get_bytes(location)
    except S3AccessError as exc:
        raise RuntimeValidationError(
            f"Could not access the InputLocation {input_location}: ensure the object exists and the endpoint's role "
            "can read it."
        ) from exc


def _locations(
    environ: Mapping[str, object], config: AsyncInferenceConfig, inference_id: str
) -> tuple[S3Location, S3Location | None]:
    extension = _header(environ, "HTTP_X_AMZN_SAGEMAKER_S3OUTPUTPATHEXTENSION") or ""
    filename = _header(environ, "HTTP_X_AMZN_SAGEMAKER_FILENAME")
    paths = config.output_config
    output = S3Location.parse(paths.s3_output_path or "").child(extension, filename or f"{inference_id}.out")
    failure = None
    if paths.s3_failure_path:
        failure = S3Location.parse(paths.s3_failure_path).child(extension, f"{inference_id}-error.out")
    return output, failure


def _header(environ: Mapping[str, object], key: str) -> str | None:
    value = environ.get(key)
    return str(value) if value is not None and value != "" else None


def _int_header(environ: Mapping[str, object], key: str) -> int | None:
    value = _header(environ, key)
    try:
        return int(value) if value is not None else None
    except ValueError as exc:
        raise RuntimeValidationError(f"{key.removeprefix('HTTP_')} must be an integer, not {value!r}.") from exc
