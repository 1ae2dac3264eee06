"""The SageMaker JSON-protocol dispatcher: ``X-Amz-Target: SageMaker.<Op>`` -> ``snake_case`` handler.

Errors are serialized here and nowhere else.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel

from infra.control_plane.core.errors import (
    InternalFailure,
    SerializationException,
    ServiceError,
    UnknownOperationException,
    ValidationException,
)
from infra.control_plane.core.resource_tags import Tags
from infra.control_plane.core.serialize import shape_response
from infra.control_plane.core.store import Registry
from infra.control_plane.core.validation import validate_request
from infra.control_plane.sagemaker_backend import SageMakerBackend

logger = logging.getLogger(__name__)

Handler = Callable[[Mapping[str, Any]], dict[str, Any]]
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_case(operation: str) -> str:
    return _CAMEL.sub("_", operation).lower()


class SageMakerDispatcher:
    def __init__(self, registry: Registry[SageMakerBackend]) -> None:
        self._registry = registry

    @cached_property
    def model(self) -> ServiceModel:
        return botocore.session.get_session().get_service_model("sagemaker")

    def handle(self, operation: str, body: bytes, account_id: str, region: str) -> tuple[int, dict[str, Any]]:
        """Answer one request; returns the HTTP status and the JSON body (a result or an error)."""
        try:
            op_model = self._operation(operation)
            handler = self._handler(self._registry.get(account_id, region), operation)
            params = _parse(body)
            validate_request(params, op_model.input_shape)
            result = handler(params)
            return 200, shape_response(result, op_model.output_shape)
        except ServiceError as exc:
            logger.debug("%s -> %s: %s", operation, exc.code, exc.message)
            return exc.status, exc.to_body()
        except Exception as exc:
            logger.exception("SageMaker.%s failed", operation)
            return 500, InternalFailure(f"Internal error while handling {operation}: {type(exc).__name__}").to_body()

    def _operation(self, operation: str) -> OperationModel:
        if operation not in self.model.operation_names:
            raise UnknownOperationException(f"Operation {operation} is not a SageMaker operation.")
        return self.model.operation_model(operation)

    def _handler(self, backend: SageMakerBackend, operation: str) -> Handler:
        name = snake_case(operation)
        services = backend.services()
        for service in (*services, Tags(services)):
            handler = getattr(service, name, None)
            if callable(handler):
                return handler
        raise UnknownOperationException(
            f"Operation {operation} is not implemented by the Sagestack local control plane."
        )


def _parse(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationException(f"Request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # the C decoder's own limit, far deeper than validation's MAX_NESTING
        raise ValidationException("Request is nested too deeply.") from exc
    if not isinstance(params, dict):
        raise SerializationException("Request body must be a JSON object.")
    return params
