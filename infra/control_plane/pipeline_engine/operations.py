"""Calling the control plane's own operations in-process (through the backend's services, never HTTP).

Requests are coerced to and validated against botocore's input shape (as the HTTP front does) and responses are
shaped by the output shape, so a step's properties are exactly what ``Describe*`` answers to a client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, ServiceModel, Shape, StructureShape

from infra.control_plane.core.serialize import shape_response
from infra.control_plane.core.validation import validate_request

Services = Callable[[], Sequence[object]]
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker")


def snake_case(operation: str) -> str:
    return _CAMEL.sub("_", operation).lower()


class Operations:
    """``call("CreateProcessingJob", {...})`` on whichever backend service implements it."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def handler(self, operation: str) -> Callable[[Mapping[str, Any]], dict[str, Any]] | None:
        name = snake_case(operation)
        for service in self._services():
            found = getattr(service, name, None)
            if callable(found):
                return found
        return None

    def supports(self, operation: str) -> bool:
        return self.handler(operation) is not None

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Run one operation; raises the handler's ``ServiceError`` (or a ValidationException) unchanged."""
        op_model = service_model().operation_model(operation)
        request = coerce(dict(params), op_model.input_shape) if op_model.input_shape is not None else {}
        validate_request(request, op_model.input_shape)
        handler = self.handler(operation)
        if handler is None:
            raise LookupError(f"{operation} is not implemented by the local control plane")
        result = handler(request)
        # Through JSON so nested timestamps become epoch numbers and the document is plain data.
        return json.loads(json.dumps(shape_response(result, op_model.output_shape), default=str))


def coerce(value: Any, shape: Shape) -> Any:
    """Convert resolved expression values to the member types (a Parameter Integer inside a string map, ...)."""
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        return {k: coerce(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [coerce(v, shape.member) for v in value]
    if isinstance(shape, MapShape) and isinstance(value, Mapping):
        return {str(k): coerce(v, shape.value) for k, v in value.items()}
    return _scalar(value, shape.type_name)


def _scalar(value: Any, type_name: str) -> Any:
    if type_name == "string" and isinstance(value, bool):
        return "true" if value else "false"
    if type_name == "string" and isinstance(value, int | float):
        return str(value)
    try:
        if type_name in ("integer", "long") and isinstance(value, str | float) and not isinstance(value, bool):
            return int(float(value))
        if type_name in ("float", "double") and isinstance(value, str):
            return float(value)
    except ValueError:
        return value
    if type_name == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value
