"""Guards every request passes before it is routed: Host, Origin, Content-Length and body limits.

See ``docs/security.md``: no browser and no foreign host may drive the stack, and no body is read past its limit.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from infra.config import StackSettings, is_loopback

StartResponse = Callable[..., Any]
_READ_CHUNK = 64 * 1024
REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    413: "Request Entity Too Large",
    424: "Failed Dependency",
    500: "Internal Server Error",
    503: "Unavailable",
}


@dataclass
class EdgeRefusal(Exception):
    """A request the edge answers itself with an AWS error (JSON or XML, whichever the client speaks)."""

    status: int
    code: str
    message: str
    xml_code: str | None = None  # the S3/query-protocol name of the same error, when it differs


class BodyTooLarge(Exception):
    """The request body is over its limit; ``length`` is the declared size (``None`` when chunked)."""

    def __init__(self, length: int | None) -> None:
        super().__init__(length)
        self.length = length


def check_host(environ: dict[str, Any], settings: StackSettings) -> None:
    """Refuse a ``Host`` that names anything but this stack: DNS rebinding sends the attacker's name."""
    host = str(environ.get("HTTP_HOST") or "")
    if not host_allowed(host, settings):
        raise EdgeRefusal(403, "AccessDeniedException", f"Host {host!r} is not served here.", "AccessDenied")


def host_allowed(host: str, settings: StackSettings) -> bool:
    name = _host_name(host)
    if not name:
        return False  # HTTP/1.1 requires Host; every AWS client sends it
    if name in {settings.host.lower(), "localhost", *(allowed.lower() for allowed in settings.allowed_hosts)}:
        return True
    if is_loopback(name):
        return True
    return _is_own_address(name)  # e.g. a Docker job network's gateway, where the runtime's relay listens


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_own_address(name: str) -> bool:
    """True when ``name`` is an IP address of one of this machine's interfaces (only those can be bound)."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if address.is_unspecified or address.is_multicast:
        return False
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True


def check_origin(environ: dict[str, Any], settings: StackSettings) -> str | None:
    """The request's browser ``Origin`` when it is allowed; refuse any other origin (AWS clients send none)."""
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return None
    if origin in settings.allowed_origins:
        return str(origin)
    raise EdgeRefusal(403, "AccessDeniedException", f"Origin {origin!r} is not allowed.", "AccessDenied")


def check_same_origin(environ: dict[str, Any]) -> None:
    """The console: a browser ``Origin``, when sent (forms, scripts), must be the stack itself (the checked Host)."""
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None and origin != f"http://{environ.get('HTTP_HOST')}":
        raise EdgeRefusal(403, "AccessDeniedException", f"Origin {origin!r} is not allowed.", "AccessDenied")


def preflight_headers(environ: dict[str, Any], origin: str) -> list[tuple[str, str]]:
    """CORS headers for an allowed origin's preflight (``OPTIONS``)."""
    requested = str(environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS") or "")
    return [
        *cors_headers(origin),
        ("Access-Control-Allow-Methods", "GET, PUT, POST, DELETE, HEAD"),
        ("Access-Control-Allow-Headers", requested),
        ("Access-Control-Max-Age", "600"),
    ]


def cors_headers(origin: str | None) -> list[tuple[str, str]]:
    if origin is None:
        return []
    return [("Access-Control-Allow-Origin", origin), ("Access-Control-Expose-Headers", "*"), ("Vary", "Origin")]


def declared_length(environ: dict[str, Any]) -> int | None:
    """The request's ``Content-Length`` (``None`` when absent); a malformed one is a 400."""
    raw = str(environ.get("CONTENT_LENGTH") or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise EdgeRefusal(400, "SerializationException", f"Content-Length {raw!r} is not a number.", "BadRequest")
    return int(raw)


def is_chunked(environ: dict[str, Any]) -> bool:
    return bool(environ.get("wsgi.input_terminated"))  # werkzeug de-chunks Transfer-Encoding: chunked for us


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The whole body, Content-Length or chunked; ``BodyTooLarge`` before reading when it is declared too large."""
    stream = environ["wsgi.input"]
    if is_chunked(environ):
        parts: list[bytes] = []
        size = 0
        while size <= limit:
            part = stream.read(min(_READ_CHUNK, limit + 1 - size))
            if not part:
                return b"".join(parts)
            parts.append(part)
            size += len(part)
        raise BodyTooLarge(None)
    length = declared_length(environ) or 0
    if length > limit:
        raise BodyTooLarge(length)
    return bytes(stream.read(length)) if length > 0 else b""


def speaks_json(environ: dict[str, Any], service: str | None) -> bool:
    """Whether the client expects a JSON error (JSON protocols) rather than XML (S3 and the query protocol)."""
    content_type = str(environ.get("CONTENT_TYPE") or "")
    return bool(environ.get("HTTP_X_AMZ_TARGET")) or "json" in content_type or service == "sagemaker"


def refusal_response(start_response: StartResponse, refusal: EdgeRefusal, as_json: bool) -> Iterable[bytes]:
    return respond(start_response, *refusal_parts(refusal, as_json))


def refusal_parts(refusal: EdgeRefusal, as_json: bool) -> tuple[int, list[tuple[str, str]], bytes]:
    """A refusal's status, headers and body, in AWS's JSON or XML error shape."""
    request_id = str(uuid.uuid4())
    if as_json:
        body = json.dumps({"__type": refusal.code, "message": refusal.message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", refusal.code)]
    else:
        code = escape(refusal.xml_code or refusal.code)
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(refusal.message)}"
            f"</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "application/xml")]
    headers.append(("x-amzn-RequestId", request_id))
    return refusal.status, headers, body


def respond(start_response: StartResponse, status: int, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
    headers = [*headers, ("Content-Length", str(len(body)))]
    start_response(f"{status} {REASONS.get(status, 'Status')}", headers)
    return [body]
