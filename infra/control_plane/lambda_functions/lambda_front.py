"""Lambda's REST-JSON protocol (``/2015-03-31/functions...``, ``/2018-10-31/layers...``) onto :class:`LambdaFunctions`.

The edge sends every request signed for ``lambda`` here, so moto's Lambda mock (which needs Docker) never runs.
Errors carry Lambda's shape: ``x-amzn-ErrorType`` and ``{"Type": "User", "message": ...}``.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from infra.control_plane.core.errors import ServiceError
from infra.control_plane.lambda_functions.functions import LambdaFunctions, invocation_log

logger = logging.getLogger(__name__)

_FUNCTIONS = re.compile(r"^/2015-03-31/functions/?$")
_FUNCTION = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)(?P<rest>/[a-z-]+)?/?$")
_LAYER_VERSIONS = re.compile(r"^/2018-10-31/layers/(?P<name>[^/]+)/versions(?:/(?P<version>\d+))?/?$")
LAMBDA_PATH = re.compile(r"^/(2015-03-31/functions|2018-10-31/layers)(/|$)")


@dataclass(frozen=True)
class LambdaReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class UnknownLambdaOperation(ServiceError):
    code = "UnknownOperationException"
    status = 404


class LambdaFront:
    def __init__(self, functions: Callable[[str, str], LambdaFunctions]) -> None:
        self._functions = functions  # (account id, region) -> that account/region's functions

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, account_id: str, region: str
    ) -> LambdaReply:
        try:
            return self._route(self._functions(account_id, region), method, unquote(path), headers, body)
        except ServiceError as exc:
            return _error(exc.status, exc.code, exc.message)
        except (ValueError, TypeError) as exc:
            return _error(400, "InvalidParameterValueException", f"Could not parse request body: {exc}")
        except Exception as exc:  # a fault of ours: a 500 with the reason, never a broken connection
            logger.exception("lambda request %s %s failed", method, path)
            return _error(500, "ServiceException", f"Internal error: {exc!r}")

    def _route(
        self, functions: LambdaFunctions, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> LambdaReply:
        if _FUNCTIONS.match(path):
            if method == "POST":
                return _json(201, functions.create_function(_document(body)))
            if method == "GET":
                return _json(200, functions.list_functions({}))
        match = _FUNCTION.match(path)
        if match is not None:
            name, rest = {"FunctionName": match.group("name")}, match.group("rest") or ""
            if rest == "/invocations" and method == "POST":
                return self._invoke(functions, match.group("name"), headers, body)
            routes: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
                ("GET", ""): lambda: functions.get_function(name),
                ("DELETE", ""): lambda: functions.delete_function(name),
                ("GET", "/configuration"): lambda: functions.get_function_configuration(name),
                ("PUT", "/configuration"): lambda: functions.update_function_configuration({**_document(body), **name}),
                ("PUT", "/code"): lambda: functions.update_function_code({**_document(body), **name}),
            }
            action = routes.get((method, rest))
            if action is not None:
                answer = action()
                return _json(204, None) if method == "DELETE" else _json(200, answer)
        layer = _LAYER_VERSIONS.match(path)
        if layer is not None:
            if method == "POST" and layer.group("version") is None:
                return _json(201, functions.publish_layer_version(layer.group("name"), _document(body)))
            if method == "GET" and layer.group("version") is not None:
                return _json(200, functions.get_layer_version(layer.group("name"), int(layer.group("version"))))
        raise UnknownLambdaOperation(f"{method} {path} is not a Lambda operation the local stack implements.")

    def _invoke(self, functions: LambdaFunctions, name: str, headers: dict[str, str], body: bytes) -> LambdaReply:
        kind = headers.get("x-amz-invocation-type") or "RequestResponse"
        if kind == "DryRun":
            functions.get_function({"FunctionName": name})
            return LambdaReply(204, [], b"")
        try:
            json.loads(body or b"{}")
        except ValueError as exc:
            raise InvalidRequestContentException("Could not parse request body into json") from exc
        result = functions.invoke_function(name, body)
        if kind == "Event":
            return LambdaReply(202, [("x-amzn-RequestId", str(uuid.uuid4()))], b"")
        reply_headers = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", "$LATEST")]
        if result.function_error:
            reply_headers.append(("X-Amz-Function-Error", result.function_error))
        if headers.get("x-amz-log-type") == "Tail":
            reply_headers.append(("X-Amz-Log-Result", invocation_log(result)))
        return LambdaReply(200, reply_headers, result.payload)


class InvalidRequestContentException(ServiceError):
    code = "InvalidRequestContentException"


def _document(body: bytes) -> dict[str, Any]:
    document = json.loads(body or b"{}")
    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object")
    return document


def _json(status: int, document: dict[str, Any] | None) -> LambdaReply:
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))]
    return LambdaReply(status, headers, b"" if document is None else json.dumps(document).encode())


def _error(status: int, code: str, message: str) -> LambdaReply:
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-ErrorType", code),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    return LambdaReply(status, headers, json.dumps({"Type": "User", "message": message}).encode())
