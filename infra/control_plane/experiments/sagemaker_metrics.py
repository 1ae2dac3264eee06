"""The ``sagemaker-metrics`` front (rest-json): ``PUT /BatchPutMetrics`` and ``POST /BatchGetMetrics``.

The edge routes here by path when the request is signed for ``sagemaker`` (the service's signing name).
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import botocore.session
from botocore.model import ListShape, ServiceModel, Shape, StructureShape

from infra.control_plane.core.errors import InternalFailure, SerializationException, ServiceError
from infra.control_plane.core.serialize import shape_response
from infra.control_plane.core.validation import validate_request
from infra.control_plane.experiments.metrics_api import SageMakerMetrics

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


# --- a quick yes for a well-formed BatchPutMetrics request (docs/experiments.md#metrics) ---------------------------
# The generic validator (``core/validation.py``) walks botocore's model twice per request (the model's constraints,
# then botocore's type checks, which parse every timestamp through dateutil): about half a millisecond for 10 points,
# more than the rest of the call. ``BatchPutMetrics`` is the call a client makes thousands of times in a row, so its
# usual form is recognised here from the same model's constraints, in one pass over plain values. Anything this check
# does not accept goes through the generic validator, which answers the refusal with AWS's message; so the check only
# has to be strict (never say yes where the generic validator says no), not complete.

# Epoch seconds a timestamp may hold (year 1 to 9999), as the generic validator bounds them.
_EARLIEST_EPOCH, _LATEST_EPOCH = -62135596800, 253402300799


@dataclass(frozen=True)
class _Text:
    """A string member's constraints: length bounds and the model's pattern (matched whole, as the validator does)."""

    low: int
    high: int
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, shape: Shape) -> _Text:
        meta = shape.metadata
        return cls(int(meta.get("min", 0)), int(meta.get("max", 1 << 31)), re.compile(meta["pattern"], re.DOTALL))

    def accepts(self, value: object) -> bool:
        return (
            type(value) is str
            and self.low <= len(value) <= self.high
            and "\x00" not in value
            and self.pattern.fullmatch(value) is not None
        )


@dataclass(frozen=True)
class PutMetricsForm:
    """BatchPutMetrics' input shape, read once from botocore's model."""

    members: frozenset[str]
    component_name: _Text
    most_points: int
    point_members: frozenset[str]
    point_required: frozenset[str]
    metric_name: _Text
    lowest_step: int

    @classmethod
    def of(cls, shape: StructureShape) -> PutMetricsForm:
        data = shape.members["MetricData"]
        assert isinstance(data, ListShape) and isinstance(data.member, StructureShape)
        point = data.member
        return cls(
            members=frozenset(shape.members),
            component_name=_Text.of(shape.members["TrialComponentName"]),
            most_points=int(data.metadata["max"]),
            point_members=frozenset(point.members),
            point_required=frozenset(point.required_members),
            metric_name=_Text.of(point.members["MetricName"]),
            lowest_step=int(point.members["Step"].metadata.get("min", 0)),
        )

    def accepts(self, params: Mapping[str, Any]) -> bool:
        """True only for a request the generic validator accepts; False sends it there."""
        data = params.get("MetricData")
        return (
            params.keys() <= self.members
            and self.component_name.accepts(params.get("TrialComponentName"))
            and type(data) is list
            and 1 <= len(data) <= self.most_points
            and all(self._accepts_point(point) for point in data)
        )

    def _accepts_point(self, point: object) -> bool:
        if type(point) is not dict or not point.keys() <= self.point_members:
            return False
        if not self.point_required <= point.keys():
            return False
        step = point.get("Step", self.lowest_step)  # absent is fine; a null is botocore's type error
        return (
            self.metric_name.accepts(point["MetricName"])
            and _is_epoch(point["Timestamp"])
            and type(point["Value"]) in (float, int)
            and type(step) is int
            and step >= self.lowest_step
        )


def _is_epoch(value: object) -> bool:
    if type(value) not in (float, int):
        return False
    seconds = float(value)  # type: ignore[arg-type]
    return math.isfinite(seconds) and _EARLIEST_EPOCH <= seconds <= _LATEST_EPOCH


@lru_cache(maxsize=1)
def put_metrics_form(shape: StructureShape) -> PutMetricsForm:
    return PutMetricsForm.of(shape)


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
