"""The ``sagemaker-mlflow`` front: MLflow REST requests signed for ``sagemaker-mlflow`` go to their tracking server.

This is what SageMaker's ``sagemaker-mlflow`` plugin sends when the tracking URI is a tracking server's ARN and
``SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT`` is the stack's URL: the MLflow REST API (``/api/2.0/mlflow/...``, artifacts
under ``/api/2.0/mlflow-artifacts/...``), SigV4-signed for the service ``sagemaker-mlflow``, with the server's ARN in
``x-mlflow-sm-tracking-server-arn``. The edge checks the signature; this front finds the server by that ARN and
relays the request to its process, streaming both bodies (docs/experiments.md#the-sagemaker-mlflow-plugin).
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from infra.control_plane.mlflow_servers.tracking_server_records import RUNNING_STATUSES, TrackingServer
from infra.control_plane.mlflow_servers.tracking_servers import MlflowTrackingServers

logger = logging.getLogger(__name__)

ARN_HEADER = "HTTP_X_MLFLOW_SM_TRACKING_SERVER_ARN"
_CHUNK_BYTES = 64 * 1024
_RELAY_TIMEOUT_SECONDS = 300.0
# Request headers the server gets as they came; the signature's, Host and hop-by-hop headers stay at the edge.
_FORWARDED = ("CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_ACCEPT", "HTTP_ACCEPT_ENCODING", "HTTP_USER_AGENT")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"})

Servers = Callable[[str, str], MlflowTrackingServers]  # (account, region) -> that backend's tracking servers


@dataclass(frozen=True)
class RelayReply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: Iterable[bytes]


def _mlflow_error(status: int, code: str, message: str) -> RelayReply:
    """An error as the MLflow REST API answers one (what the mlflow client shows its user)."""
    body = json.dumps({"error_code": code, "message": message}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return RelayReply(status, http.client.responses.get(status, "Error"), headers, [body])


def _parse_arn(arn: str) -> tuple[str, str, str] | None:
    """(region, account, lower-cased name) of ``arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>``."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "sagemaker" or not parts[5].startswith("mlflow-tracking-server/"):
        return None
    return parts[3], parts[4], parts[5].split("/", 1)[1]


class MlflowFront:
    def __init__(self, servers: Servers, account_id: str) -> None:
        self._servers = servers
        self._account_id = account_id

    def handle(self, environ: dict[str, Any]) -> RelayReply:
        arn = str(environ.get(ARN_HEADER) or "")
        parsed = _parse_arn(arn)
        if parsed is None:
            return _mlflow_error(
                400, "INVALID_PARAMETER_VALUE", "x-mlflow-sm-tracking-server-arn is not a tracking server ARN."
            )
        region, account, _ = parsed
        server = self._find(account, region, arn)
        if server is None:
            return _mlflow_error(404, "RESOURCE_DOES_NOT_EXIST", f"Tracking server {arn} does not exist.")
        if server.status not in RUNNING_STATUSES or not server.port:
            message = f"Tracking server {server.name} is not running (status {server.status.value})."
            return _mlflow_error(503, "TEMPORARILY_UNAVAILABLE", message)
        return _relay(environ, server.port)

    def _find(self, account: str, region: str, arn: str) -> TrackingServer | None:
        if account != self._account_id:
            return None
        return next((s for s in self._servers(account, region).store.values() if s.arn == arn), None)


def _relay(environ: dict[str, Any], port: int) -> RelayReply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=_RELAY_TIMEOUT_SECONDS)
    headers = {_header_name(key): str(environ[key]) for key in _FORWARDED if environ.get(key)}
    headers["Host"] = f"127.0.0.1:{port}"
    target = str(environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/")
    length = int(str(environ.get("CONTENT_LENGTH") or 0) or 0)
    body = _request_body(environ["wsgi.input"], length) if length else None
    try:
        connection.request(str(environ.get("REQUEST_METHOD") or "GET"), target, body=body, headers=headers)
        answer = connection.getresponse()
    except OSError as exc:
        connection.close()
        logger.warning("relay to the MLflow server on port %s failed: %s", port, exc)
        return _mlflow_error(502, "TEMPORARILY_UNAVAILABLE", "The tracking server did not answer.")
    kept = [(name, value) for name, value in answer.getheaders() if name.lower() not in _HOP_BY_HOP]
    size = answer.getheader("Content-Length")
    if size is not None:
        kept.append(("Content-Length", size))
    return RelayReply(answer.status, answer.reason, kept, _stream(answer, connection))


def _request_body(stream: IO[bytes], length: int) -> Iterator[bytes]:
    """Exactly ``length`` bytes of the request, in chunks (the connection may carry the client's next request)."""
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(_CHUNK_BYTES, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


def _header_name(environ_key: str) -> str:
    return environ_key.removeprefix("HTTP_").replace("_", "-").title()


def _stream(answer: http.client.HTTPResponse, connection: http.client.HTTPConnection) -> Iterator[bytes]:
    try:
        while chunk := answer.read(_CHUNK_BYTES):
            yield chunk
    finally:
        connection.close()
