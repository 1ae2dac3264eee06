"""Athena's JSON protocol (``X-Amz-Target: AmazonAthena.<Op>``) for query executions; other operations go to moto.

Requests are validated against botocore's Athena model; errors carry Athena's shape (``Message``,
``AthenaErrorCode``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from functools import cached_property
from typing import Any

import botocore.session
from botocore.model import ServiceModel

from infra.control_plane.athena.query_executions import InvalidRequestException, QueryExecutions
from infra.control_plane.core.errors import ValidationException, as_service_error
from infra.control_plane.core.serialize import shape_response
from infra.control_plane.core.validation import validate_request

logger = logging.getLogger(__name__)

ATHENA_OPERATIONS = frozenset(
    {
        "StartQueryExecution",
        "GetQueryExecution",
        "GetQueryResults",
        "StopQueryExecution",
        "ListQueryExecutions",
        "BatchGetQueryExecution",
    }
)


def athena_operation(target: str) -> str | None:
    """The operation of an ``X-Amz-Target`` this front answers, else None (moto answers it)."""
    prefix, _, operation = target.partition(".")
    return operation if prefix == "AmazonAthena" and operation in ATHENA_OPERATIONS else None


class AthenaFront:
    def __init__(self, executions: Callable[[str, str], QueryExecutions]) -> None:
        self._executions = executions  # (account id, region) -> that account/region's query executions

    @cached_property
    def model(self) -> ServiceModel:
        return botocore.session.get_session().get_service_model("athena")

    def handle(self, operation: str, body: bytes, account_id: str, region: str) -> tuple[int, dict[str, Any]]:
        try:
            op_model = self.model.operation_model(operation)
            params = _parse(body)
            try:
                validate_request(params, op_model.input_shape)
            except ValidationException as exc:
                raise InvalidRequestException(exc.message) from exc
            handler = getattr(self._executions(account_id, region), _snake(operation))
            return 200, shape_response(handler(params), op_model.output_shape)
        except Exception as exc:
            error = as_service_error(exc, f"AmazonAthena.{operation}")
            return error.status, error.to_body()


def _parse(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequestException(f"Request body is not valid JSON: {type(exc).__name__}") from exc
    if not isinstance(params, dict):
        raise InvalidRequestException("Request body must be a JSON object.")
    return params


def _snake(operation: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", operation).lower()
