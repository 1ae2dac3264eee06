"""The ``sagemaker-metrics`` front (rest-json): ``PUT /BatchPutMetrics`` and ``POST /BatchGetMetrics``.

The edge routes here by path when the request is signed for ``sagemaker`` (the service's signing name).
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

import botocore.session
from botocore.model import ServiceModel

from infra.control_plane.core.errors import InternalFailure, SerializationException, ServiceError
from infra.control_plane.core.serialize import shape_response
from infra.control_plane.core.validation import validate_request
from infra.control_plane.experiments.metrics_api import SageMakerMetrics
from infra.control_plane.experiments.metrics_request import put_metrics_form

logger = logging.getLogger(__name__)

_NON_FINITE = ("NaN", "Infinity", "-Infinity")
METRICS_PATHS = {"/BatchPutMetrics": ("PUT", "BatchPutMetrics"), "/BatchGetMetrics": ("POST", "BatchGetMetrics")}


class MetricsBackend(Protocol):
    sagemaker_metrics: SageMakerMetrics


@lru_cache(maxsize=1)
def metrics_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker-metrics")


class MetricsFront:
    def __init__(self, backends: Callable[[str, str], MetricsBackend]) -> None:
        self._backends = backends

    def handle(self, path: str, body: bytes, account_id: str, region: str) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", _request_id())]
        operation = METRICS_PATHS[path][1]
        try:
            op_model = metrics_model().operation_model(operation)
            params = _parse(body)
            if operation != "BatchPutMetrics" or not put_metrics_form(op_model.input_shape).accepts(params):
                validate_request(params, op_model.input_shape)  # the generic walk; a refusal's AWS message
            handler = getattr(self._backends(account_id, region).sagemaker_metrics, _snake(operation))
            answer = shape_response(handler(params), op_model.output_shape)
            return 200, headers, json.dumps(answer).encode()
        except ServiceError as exc:
            return _error(exc, headers)
        except Exception as exc:
            logger.exception("SageMakerMetrics.%s failed", operation)
            return _error(InternalFailure(f"Internal error while handling {operation}: {type(exc).__name__}"), headers)


def _request_id() -> str:
    """A request id in uuid4's form. Not from ``os.urandom`` (uuid4's source): an id needs no secrecy, and that
    system call cost a tenth of a millisecond per request here, about as much as storing the batch."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def _snake(operation: str) -> str:
    return "batch_put_metrics" if operation == "BatchPutMetrics" else "batch_get_metrics"


def _parse(body: bytes) -> dict[str, Any]:
    try:
        params = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SerializationException(f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise SerializationException("Request body must be a JSON object.")
    for item in params.get("MetricData") or []:
        # The JSON protocols send non-finite doubles as strings; they reach BatchPutMetrics' own per-point rules.
        if isinstance(item, dict) and item.get("Value") in _NON_FINITE:
            item["Value"] = float(item["Value"])
    return params


def _error(exc: ServiceError, headers: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]], bytes]:
    body = {"__type": exc.code, "message": exc.message, "Message": exc.message}
    return exc.status, [*headers, ("x-amzn-ErrorType", exc.code)], json.dumps(body).encode()
