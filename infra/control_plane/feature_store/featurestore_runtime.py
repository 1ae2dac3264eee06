"""``sagemaker-featurestore-runtime`` (rest-json): a request's path, query and body -> one FeatureRecords operation.

The parameters are read where botocore's model puts them (URI, query string, JSON body), validated against the
model like every SageMaker operation, and errors answered in the runtime's shape (``x-amzn-ErrorType`` header).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel

from infra.control_plane.core.errors import (
    RuntimeValidationError,
    ServiceError,
    UnknownOperationException,
    ValidationException,
    as_service_error,
)
from infra.control_plane.core.serialize import shape_response
from infra.control_plane.core.validation import validate_request
from infra.control_plane.feature_store.feature_records import FeatureRecords
from infra.control_plane.feature_store.record_ingest import INGEST_PATH, parse_ingest

logger = logging.getLogger(__name__)

_GROUP_PATH = re.compile(r"^/FeatureGroup/(?P<name>[^/]+)(?P<rest>/.*)?$")
_OPERATIONS = {
    ("PUT", ""): "PutRecord",
    ("GET", ""): "GetRecord",
    ("DELETE", ""): "DeleteRecord",
    ("POST", "/ListRecords"): "ListRecords",
    ("POST", "/Record"): "UpdateRecord",
}
_TOP_LEVEL = {"/BatchGetRecord": "BatchGetRecord", "/BatchWriteRecord": "BatchWriteRecord"}
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def is_featurestore_path(path: str) -> bool:
    return path in _TOP_LEVEL or path == INGEST_PATH or _GROUP_PATH.match(path) is not None


@dataclass(frozen=True)
class RuntimeRequest:
    method: str
    path: str
    query: str
    body: bytes
    account_id: str
    region: str


@dataclass(frozen=True)
class RuntimeReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class FeatureStoreRuntimeFront:
    def __init__(self, records: Callable[[str, str], FeatureRecords]) -> None:
        self._records = records  # (account id, region) -> that account/region's FeatureRecords

    @cached_property
    def model(self) -> ServiceModel:
        return botocore.session.get_session().get_service_model("sagemaker-featurestore-runtime")

    def handle(self, request: RuntimeRequest) -> RuntimeReply:
        operation = "(unknown)"
        try:
            if request.path == INGEST_PATH:
                operation = "IngestRecords"
                return self._ingest(request)
            operation, uri_name = _operation(request.method, request.path)
            op_model = self.model.operation_model(operation)
            params = _params(op_model, uri_name, request.query, request.body)
            try:
                validate_request(_records_checked(params), op_model.input_shape)
            except ValidationException as exc:
                raise RuntimeValidationError(exc.message) from exc
            records = self._records(request.account_id, request.region)
            handler = getattr(records, _snake(operation), None)
            if handler is None:
                raise UnknownOperationException(f"{operation} is not implemented by the Sagestack local control plane.")
            result = handler(params)
            body = shape_response(result, op_model.output_shape)
            return RuntimeReply(200, _headers(), json.dumps(body).encode())
        except Exception as exc:
            return error_reply(as_service_error(exc, f"FeatureStoreRuntime.{operation}"))

    def _ingest(self, request: RuntimeRequest) -> RuntimeReply:
        """The stack's bulk path (``record_ingest.py``): POST only; the answer is its own small JSON document."""
        if request.method != "POST":
            raise UnknownOperationException(
                f"{request.method} {request.path} names no Feature Store runtime operation."
            )
        records = self._records(request.account_id, request.region)
        result = records.ingest_records(parse_ingest(request.body))
        return RuntimeReply(200, _headers(), json.dumps(result).encode())


def _operation(method: str, path: str) -> tuple[str, str | None]:
    if path in _TOP_LEVEL and method == "POST":
        return _TOP_LEVEL[path], None
    match = _GROUP_PATH.match(path)
    operation = _OPERATIONS.get((method, match.group("rest") or "")) if match else None
    if match is None or operation is None:
        raise UnknownOperationException(f"{method} {path} names no Feature Store runtime operation.")
    return operation, unquote(match.group("name"))


def _params(op_model: OperationModel, uri_name: str | None, query: str, body: bytes) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if body.strip():
        try:
            loaded = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise RuntimeValidationError(f"Request body is not valid JSON: {type(exc).__name__}") from exc
        if not isinstance(loaded, dict):
            raise RuntimeValidationError("Request body must be a JSON object.")
        params.update(loaded)
    shape = op_model.input_shape
    if shape is None:
        return params
    values = parse_qs(query, keep_blank_values=True)
    for member_name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", member_name)
        if location == "uri" and uri_name is not None:
            params[member_name] = uri_name
        elif location == "querystring" and wire_name in values:
            found = values[wire_name]
            params[member_name] = found if member.type_name == "list" else found[-1]
    return params


_PLACEHOLDER_RECORD = [{"FeatureName": "record", "ValueAsString": ""}]
_MAX_VALUE_LENGTH = 358400


def _records_checked(params: dict[str, Any]) -> dict[str, Any]:
    """Check the records of PutRecord / BatchWriteRecord here (the hot path: one pass over each value) and hand the
    model's validation the rest of the request, with each record replaced by a placeholder."""
    if "Record" in params:
        _check_record(params["Record"], "record")
        return {**params, "Record": _PLACEHOLDER_RECORD}
    entries = params.get("Entries")
    if isinstance(entries, list) and all(isinstance(e, dict) and "Record" in e for e in entries):
        for index, entry in enumerate(entries, start=1):
            _check_record(entry["Record"], f"entries.{index}.member.record")
        return {**params, "Entries": [{**e, "Record": _PLACEHOLDER_RECORD} for e in entries]}
    return params


def _check_record(record: object, path: str) -> None:
    if not isinstance(record, list) or not record:
        raise RuntimeValidationError(f"Value at '{path}' failed to satisfy constraint: Member must be a non-empty list")
    for index, value in enumerate(record, start=1):
        where = f"{path}.{index}.member"
        if not isinstance(value, dict) or not isinstance(value.get("FeatureName"), str) or not value["FeatureName"]:
            raise RuntimeValidationError(
                f"Value at '{where}.featureName' failed to satisfy constraint: Member must not be null"
            )
        scalar, many = value.get("ValueAsString"), value.get("ValueAsStringList")
        if scalar is not None and (not isinstance(scalar, str) or len(scalar) > _MAX_VALUE_LENGTH):
            raise RuntimeValidationError(
                f"Value at '{where}.valueAsString' failed to satisfy constraint: "
                f"Member must be a string of at most {_MAX_VALUE_LENGTH} characters"
            )
        if many is not None and (not isinstance(many, list) or not all(isinstance(v, str) for v in many)):
            raise RuntimeValidationError(
                f"Value at '{where}.valueAsStringList' failed to satisfy constraint: Member must be a list of strings"
            )


def _snake(operation: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", operation).lower()


def _headers() -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))]


def error_reply(exc: ServiceError) -> RuntimeReply:
    body: Mapping[str, object] = {"message": exc.message}
    headers = [*_headers(), ("x-amzn-ErrorType", exc.code)]
    return RuntimeReply(exc.status, headers, json.dumps(body).encode())
