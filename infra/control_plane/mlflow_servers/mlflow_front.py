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
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from infra.control_plane.mlflow_servers.tracking_server_records import RUNNING_STATUSES, TrackingServer
from infra.control_plane.mlflow_servers.tracking_servers import MlflowTrackingServers

logger = logging.getLogger(__name__)

ARN_HEADER = "HTTP_X_MLFLOW_SM_TRACKING_SERVER_ARN"
_CHUNK_BYTES = 64 * 1024
_RELAY_TIMEOUT_SECONDS = 300.0
_IDLE_PER_PORT = 8
_KEPT_PORTS = 16  # more than the servers one stack runs (5 per account and region)
BUFFERED_BODY_BYTES = 1024 * 1024  # tracking calls (a log_batch is at most 1,000 metrics); artifacts stream
# Request headers the server gets as they came; the signature's, Host and hop-by-hop headers stay at the edge.
_FORWARDED = ("CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_ACCEPT", "HTTP_ACCEPT_ENCODING", "HTTP_USER_AGENT")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"})

# The tracking REST API (JSON answers of bounded size); artifact transfers under /api/2.0/mlflow-artifacts/ stream.
TRACKING_API_PREFIXES = ("/api/2.0/mlflow/", "/api/3.0/mlflow/", "/ajax-api/2.0/mlflow/", "/ajax-api/3.0/mlflow/")

Servers = Callable[[str, str], MlflowTrackingServers]  # (account, region) -> that backend's tracking servers


@dataclass(frozen=True)
class RelayReply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: Iterable[bytes]


def is_tracking_call(path: str, arn_header: str | None) -> bool:
    """A tracking REST call of the plugin: the edge keeps its connection for the next one (when its body is
    declared and at most ``BUFFERED_BODY_BYTES``: the front reads it whole before answering)."""
    return bool(arn_header) and path.startswith(TRACKING_API_PREFIXES)


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
        self._connections = RelayConnections()

    def handle(self, environ: dict[str, Any]) -> RelayReply:
        body = _request(environ)  # read first: a kept connection must not hold an unread body, even on an error
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
        return _relay(environ, body, server.port, self._connections)

    def _find(self, account: str, region: str, arn: str) -> TrackingServer | None:
        if account != self._account_id:
            return None
        return next((s for s in self._servers(account, region).store.values() if s.arn == arn), None)


class RelayConnections:
    """Kept-alive connections to the tracking servers' processes, a few idle ones per port: a client logging batch
    after batch costs one TCP connection, not one per call (the server's gunicorn keeps connections alive)."""

    def __init__(self, idle_per_port: int = _IDLE_PER_PORT) -> None:
        self._idle: dict[int, list[http.client.HTTPConnection]] = {}
        self._idle_per_port = idle_per_port
        self._lock = threading.Lock()

    def take(self, port: int) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to ``port`` and whether it was used before (a reused one may have been closed meanwhile)."""
        with self._lock:
            idle = self._idle.get(port)
            if idle:
                return idle.pop(), True
        return http.client.HTTPConnection("127.0.0.1", port, timeout=_RELAY_TIMEOUT_SECONDS), False

    def give_back(self, port: int, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if port not in self._idle and len(self._idle) >= _KEPT_PORTS:  # ports of servers long restarted
                for stale in self._idle.pop(next(iter(self._idle))):
                    stale.close()
            idle = self._idle.setdefault(port, [])
            if len(idle) < self._idle_per_port:
                idle.append(connection)
                return
        connection.close()


def _content_length(environ: dict[str, Any]) -> int:
    return int(str(environ.get("CONTENT_LENGTH") or 0) or 0)


def _request(environ: dict[str, Any]) -> bytes | Iterator[bytes] | None:
    """A tracking call's body, read whole (a kept connection the server closed meanwhile can then be retried);
    a larger one (an artifact) streams."""
    length = _content_length(environ)
    if 0 < length <= BUFFERED_BODY_BYTES:
        return b"".join(_request_body(environ["wsgi.input"], length))
    return _request_body(environ["wsgi.input"], length) if length else None


def _relay(
    environ: dict[str, Any], body: bytes | Iterator[bytes] | None, port: int, connections: RelayConnections
) -> RelayReply:
    headers = {_header_name(key): str(environ[key]) for key in _FORWARDED if environ.get(key)}
    headers["Host"] = f"127.0.0.1:{port}"
    target = str(environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/")
    method = str(environ.get("REQUEST_METHOD") or "GET")
    connection, reused = connections.take(port)
    try:
        answer = _exchange(connection, method, target, body, headers)
    except OSError as exc:
        connection.close()
        if reused and not isinstance(body, Iterator):
            return _relay_fresh(port, connections, (method, target, body, headers))
        logger.warning("relay to the MLflow server on port %s failed: %s", port, exc)
        return _mlflow_error(502, "TEMPORARILY_UNAVAILABLE", "The tracking server did not answer.")
    return _reply(answer, connection, port, connections)


def _relay_fresh(
    port: int, connections: RelayConnections, call: tuple[str, str, bytes | None, dict[str, str]]
) -> RelayReply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=_RELAY_TIMEOUT_SECONDS)
    try:
        answer = _exchange(connection, *call)
    except OSError as exc:
        connection.close()
        logger.warning("relay to the MLflow server on port %s failed: %s", port, exc)
        return _mlflow_error(502, "TEMPORARILY_UNAVAILABLE", "The tracking server did not answer.")
    return _reply(answer, connection, port, connections)


def _exchange(
    connection: http.client.HTTPConnection,
    method: str,
    target: str,
    body: bytes | Iterator[bytes] | None,
    headers: dict[str, str],
) -> http.client.HTTPResponse:
    connection.request(method, target, body=body, headers=headers)
    return connection.getresponse()


def _reply(
    answer: http.client.HTTPResponse, connection: http.client.HTTPConnection, port: int, connections: RelayConnections
) -> RelayReply:
    kept = [(name, value) for name, value in answer.getheaders() if name.lower() not in _HOP_BY_HOP]
    size = answer.getheader("Content-Length")
    if size is not None:
        kept.append(("Content-Length", size))
    return RelayReply(answer.status, answer.reason, kept, _stream(answer, connection, port, connections))


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


def _stream(
    answer: http.client.HTTPResponse, connection: http.client.HTTPConnection, port: int, connections: RelayConnections
) -> Iterator[bytes]:
    finished = False
    try:
        while chunk := answer.read(_CHUNK_BYTES):
            yield chunk
        finished = True
    finally:
        if finished and not answer.will_close:
            connections.give_back(port, connection)  # read to its end: the connection carries the next call
        else:
            connection.close()
