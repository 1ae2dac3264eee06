"""The head of an InvokeEndpoint request the runtime front answers itself, read strictly
(docs/performance.md#the-runtime-front).

Only the shape botocore and the SageMaker SDK send is read here: ``POST /endpoints/<name>/invocations HTTP/1.1``, one
``Host``, one ``Content-Length`` within the payload limit, well-formed header lines. Anything else — another request
line, HTTP/1.0, a chunked body, ``Expect``, ``Upgrade``, a body declared over the limit, a header line this parser
does not read exactly — is ``None``: the front hands the connection, with the bytes it has read, to the WSGI server,
which answers it as it answers every other request (a 400 before reading a body over the limit, de-chunking, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_HEAD_BYTES", "HeadTemplate", "InvokeHead", "invoke_endpoint_name", "parse_invoke_head"]

MAX_HEAD_BYTES = 64 * 1024  # a longer head goes to the WSGI server, which refuses what is over its own limits
_INVOKE_LINE = re.compile(rb"POST (/endpoints/([A-Za-z0-9._~!$&'()*+,;=:@-]+)/invocations) HTTP/1\.1")
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# Header lines: a token, a colon, a value without CR, LF or NUL (no folding, no space before the colon).
_HEADER_LINES = re.compile(rb"(?:%s:[^\r\n\0]*\r\n)*%s:[^\r\n\0]*" % (_TOKEN, _TOKEN))
_ENVIRON_NAMES = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
# What the parser does with a header besides naming it: hand the request off, or read it.
_HANDED_OFF, _LENGTH, _HOST, _CONNECTION = "handed off", "length", "host", "connection"
_KINDS = {name: _HANDED_OFF for name in ("transfer-encoding", "expect", "upgrade", "te", "trailer")}
_KINDS.update({"content-length": _LENGTH, "host": _HOST, "connection": _CONNECTION})
_NAMES: dict[str, tuple[str, str]] = {}  # a header name as sent -> (its environ name, its kind)
_NAMES_KEPT = 256


@dataclass
class InvokeHead:
    """An InvokeEndpoint request's head: the endpoint, the body's length, and the headers as the WSGI environ names
    them (``CONTENT_TYPE``, ``HTTP_X_AMZ_DATE``, ...), so the edge's guards read it as they read any request."""

    endpoint: str
    content_length: int
    environ: dict[str, str]
    close: bool  # the client said ``Connection: close``


def invoke_endpoint_name(request_line: bytes) -> bytes | None:
    """The endpoint name when ``request_line`` (without its CRLF) is an HTTP/1.1 InvokeEndpoint POST."""
    match = _INVOKE_LINE.fullmatch(request_line)
    return match.group(2) if match is not None else None


def parse_invoke_head(head: bytes, max_body: int) -> InvokeHead | None:
    """``head`` (request line and headers, without the blank line); None when the front must not answer it."""
    line_end = head.find(b"\r\n")
    match = _INVOKE_LINE.fullmatch(head, 0, line_end) if line_end > 0 else None
    if match is None or _HEADER_LINES.fullmatch(head, line_end + 2) is None:
        return None
    path = match.group(1).decode("ascii")
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "REQUEST_URI": path, "QUERY_STRING": ""}
    environ["SERVER_PROTOCOL"] = "HTTP/1.1"
    length: int | None = None
    close = False
    # One decode for the whole head (latin-1 maps each byte to one character, as WSGI names header values).
    for line in head[line_end + 2 :].decode("latin-1").split("\r\n"):
        name, _, raw = line.partition(":")
        key, kind = _NAMES.get(name) or _remember(name)
        value = raw.strip(" \t")
        if kind:
            if kind == _HANDED_OFF:
                return None
            if kind == _LENGTH:
                if length is not None or not (value.isascii() and value.isdigit()):
                    return None
                length = int(value)
            elif kind == _HOST and key in environ:
                return None
            elif kind == _CONNECTION:
                close = _connection_close(value)
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    if length is None or length > max_body or "HTTP_HOST" not in environ:
        return None
    return InvokeHead(match.group(2).decode("ascii"), length, environ, close)


class HeadTemplate:
    """A head the front read and took on one connection, for the next ones that differ from it only in their
    Content-Length value (a client calling the same endpoint again with the same headers): such a head reads as the
    first did, so it is checked by one comparison and a digit scan instead of parsed and guarded again
    (docs/performance.md#the-runtime-front). A head signed per call (SigV4's date and signature) never matches."""

    __slots__ = ("_head", "_prefix", "_suffix")

    def __init__(self, prefix: bytes, suffix: bytes, head: InvokeHead) -> None:
        self._prefix, self._suffix, self._head = prefix, suffix, head

    @classmethod
    def of(cls, raw: bytes, head: InvokeHead) -> HeadTemplate | None:
        """The template of ``raw`` (read into ``head``); None when its Content-Length line is not plain
        ``Content-Length: <digits>`` as read."""
        at = raw.lower().find(b"\r\ncontent-length:")
        if at < 0:
            return None
        start = at + len(b"\r\ncontent-length:")
        while raw[start : start + 1] in (b" ", b"\t"):
            start += 1
        end = raw.find(b"\r\n", start)
        end = len(raw) if end < 0 else end
        if raw[start:end] != str(head.content_length).encode("ascii"):
            return None
        return cls(raw[:start], raw[end:], head)

    def read(self, raw: bytes, max_body: int) -> InvokeHead | None:
        """``raw`` read as the template's head with its own length; None when it differs in anything else."""
        prefix = self._prefix
        if not raw.startswith(prefix):
            return None
        start = len(prefix)
        end = raw.find(b"\r\n", start)
        end = len(raw) if end < 0 else end
        value = raw[start:end]
        if not value.isdigit() or len(raw) - end != len(self._suffix) or not raw.endswith(self._suffix):
            return None
        length = int(value)
        if length > max_body:
            return None
        head = self._head
        environ = head.environ.copy()
        environ["CONTENT_LENGTH"] = value.decode("ascii")
        return InvokeHead(head.endpoint, length, environ, head.close)


def _remember(name: str) -> tuple[str, str]:
    """A header name's WSGI environ name and what the parser does with it (remembered: clients send the same few)."""
    lowered = name.lower()
    key = _ENVIRON_NAMES.get(lowered) or "HTTP_" + lowered.upper().replace("-", "_")
    known = key, _KINDS.get(lowered, "")
    if len(_NAMES) < _NAMES_KEPT:
        _NAMES[name] = known
    return known


def _connection_close(value: str) -> bool:
    return any(option.strip().lower() == "close" for option in value.split(","))
