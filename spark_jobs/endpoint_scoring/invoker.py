"""One InvokeEndpoint request with bounded, jittered retries, and cutting a batch into requests.

Retried: throttling (``ThrottlingException``, 429 ``ModelNotReadyException``), 5xx (``InternalFailure``,
``ServiceUnavailable``, 530 ``InternalDependencyException``) and connection errors/timeouts. Never retried:
``ModelError`` (424: the container rejected this payload; it would again) and ``ValidationError`` (400).
botocore's own retries are switched off (``total_max_attempts=1``) so this is the only retry loop.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from spark_jobs.errors import (
    EndpointInvocationError,
    EndpointModelError,
    EndpointNotFoundError,
    PayloadTooLargeError,
)

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint Body max (botocore service model)
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ModelNotReadyException",
        "InternalFailure",
        "ServiceUnavailable",
        "InternalDependencyException",
    }
)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504, 530})


@dataclass(frozen=True)
class RetryPolicy:
    """Full-jitter exponential backoff: sleep ``uniform(0, min(max_delay, base * 2**attempt))``."""

    max_attempts: int = 8
    base_delay_s: float = 0.1
    max_delay_s: float = 20.0

    def delay(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        return draw() * min(self.max_delay_s, self.base_delay_s * (2**attempt))


@dataclass(frozen=True)
class Request:
    endpoint: str
    body: bytes
    content_type: str
    accept: str
    rows: int
    first_row: int
    extra: tuple[tuple[str, str], ...] = ()


def _error_fields(exc: ClientError) -> tuple[str, int, str]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), int(status or 0), str(error.get("Message", ""))


def _fatal(request: Request, exc: ClientError) -> EndpointInvocationError:
    code, status, message = _error_fields(exc)
    where = f"endpoint {request.endpoint!r}, rows {request.first_row}..{request.first_row + request.rows - 1}"
    if code == "ModelError":
        original = exc.response.get("OriginalStatusCode", "?")
        container_message = exc.response.get("OriginalMessage") or message
        log_stream = exc.response.get("LogStreamArn", "")
        return EndpointModelError(
            f"{where}: the model container answered HTTP {original}: {container_message}",
            why="the container rejected this payload (ModelError is not retried: the same request fails again)",
            fix=f"check the serializer/content type ({request.content_type}) and feature count; container logs: "
            f"{log_stream or 'CloudWatch /aws/sagemaker/Endpoints/' + request.endpoint}",
        )
    if code == "ValidationError" and "not found" in message.lower():
        return EndpointNotFoundError(
            f"{where}: {message}",
            why="no endpoint of that name in this account/region (or at this endpoint URL)",
            fix="check the name with list_endpoints, the region and AWS_ENDPOINT_URL",
        )
    return EndpointInvocationError(f"{where}: {code} (HTTP {status}): {message}", why="the request was rejected")


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, (ConnectionError, HTTPClientError)):
        return True
    if isinstance(exc, ClientError):
        code, status, _ = _error_fields(exc)
        return code in RETRYABLE_CODES or (status in RETRYABLE_STATUS and code != "ModelError")
    return False


def invoke(
    client: Any,
    request: Request,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """Send one request; retry transient failures; raise a typed error otherwise."""
    last: Exception | None = None
    for attempt in range(policy.max_attempts):
        try:
            response = client.invoke_endpoint(
                EndpointName=request.endpoint,
                Body=request.body,
                ContentType=request.content_type,
                Accept=request.accept,
                **dict(request.extra),
            )
            return bytes(response["Body"].read())
        except (ClientError, ConnectionError, HTTPClientError) as exc:
            if not _is_retryable(exc):
                raise _fatal(request, exc) from exc
            last = exc
            delay = policy.delay(attempt)
            logger.debug("endpoint %s: %s; retry %d in %.2fs", request.endpoint, exc, attempt + 1, delay)
            sleep(delay)
    raise EndpointInvocationError(
        f"endpoint {request.endpoint!r}: gave up after {policy.max_attempts} attempts: {last}",
        why="the endpoint kept throttling or failing transiently",
        fix="lower concurrency/requests per partition, raise RetryPolicy.max_attempts, or scale the endpoint",
    ) from last


def plan_requests(
    offsets: np.ndarray, max_rows: int, max_bytes: int, overhead: int, first_row: int = 0
) -> list[tuple[int, int]]:
    """Cut rows (given by ``n + 1`` byte offsets) into ``[start, stop)`` ranges of <= ``max_rows`` rows and
    <= ``max_bytes`` bytes including the per-request ``overhead``. A row that cannot fit alone is an error."""
    ranges: list[tuple[int, int]] = []
    rows, start = len(offsets) - 1, 0
    budget = max_bytes - overhead
    while start < rows:
        by_bytes = int(np.searchsorted(offsets, offsets[start] + budget, side="right")) - 1
        stop = min(start + max_rows, rows, by_bytes)
        if stop <= start:
            size = int(offsets[start + 1] - offsets[start]) + overhead
            raise PayloadTooLargeError(
                f"row {first_row + start} encodes to {size} bytes, over the {max_bytes}-byte request limit",
                why=f"InvokeEndpoint accepts at most {MAX_PAYLOAD_BYTES} bytes per request",
                fix="reduce the row's features, use a denser format (recordio), or score it with batch transform",
            )
        ranges.append((start, stop))
        start = stop
    return ranges
