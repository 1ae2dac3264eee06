"""One kept-alive HTTP/1.1 connection to a serving container, for the relay on the runtime front's event loop
(``container_relay``, docs/performance.md#the-runtime-front): one exchange at a time, its outcome handed to a callback
(the answer, whole, or the failure), its deadline kept by the relay's one timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol, cast

__all__ = ["Broken", "ContainerConnection", "NotConnected", "RelayedAnswer", "Settled", "TimedOut", "authority"]

_MAX_HEAD_BYTES = 64 * 1024  # a container's status line and headers
_NO_BODY_STATUSES = (204, 304)


class _Deadlines(Protocol):
    """What a connection tells its relay: exchanges to time out, and its own end."""

    def watch(self, connection: ContainerConnection) -> None: ...

    def unwatch(self, connection: ContainerConnection) -> None: ...

    def forget(self, connection: ContainerConnection) -> None: ...


class RelayedAnswer(NamedTuple):
    """A container's answer: its status, its headers (lower-case names) and its whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


Settled = Callable[[RelayedAnswer | Exception], None]  # what one exchange calls with its answer or failure


class Broken(Exception):
    """The connection ended or sent something that is not HTTP before the answer was complete."""


class TimedOut(Exception):
    """No complete answer within the read timeout."""


class ContainerConnection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection to a container; one exchange at a time."""

    def __init__(self, relay: _Deadlines, url: str) -> None:
        self._relay, self.url = relay, url
        self.host_line = f"Host: {authority(url)}\r\n"
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._settled: Settled | None = None  # called once with the current exchange's outcome
        self.deadline = 0.0  # the loop's time by which the current exchange must be answered
        self._head = b""  # bytes of the status line and headers received so far
        self._answer: tuple[int, dict[str, str]] | None = None  # the parsed head, while the body comes
        self._parts: list[bytes] = []
        self._received = 0
        self._length: int | None = None  # Content-Length; None: chunked or until the connection closes
        self._chunked = False
        self.reusable = True
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports implement it without subclassing

    def exchange(self, request: list[bytes], timeout: float, settled: Settled) -> None:
        """Send ``request`` (head and body); ``settled`` gets the answer or the failure, once. It is called last in
        this connection's own callbacks, so it may start the next exchange here."""
        assert self._transport is not None
        if self.closed or self._transport.is_closing():  # the container closed it since it was made or kept
            raise ConnectionResetError("the container closed the connection")
        self._settled = settled
        self.deadline = self._loop.time() + timeout
        self._relay.watch(self)
        self._head, self._answer, self._parts, self._received = b"", None, [], 0
        self._transport.writelines(request)

    def data_received(self, data: bytes) -> None:
        if self._settled is None:
            self._fail(Broken("the container sent data it was not asked for"))
            return
        try:
            if self._answer is None:
                data = self._read_head(data)
                if self._answer is not None and self._length == 0:
                    if data:
                        self.reusable = False  # an answer without a body, and bytes after it: out of step
                    self._complete(b"")
                    return
            if self._answer is not None and data:
                self._read_body(data)
        except Broken as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        self.reusable = False
        if self._answer is not None and self._length is None and not self._chunked:
            self._complete(b"".join(self._parts))  # a body delimited by the connection's end
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed, self.reusable = True, False
        self._relay.forget(self)
        self._fail(Broken(str(exc) if exc else "the container closed the connection"))

    def close(self) -> None:
        self.closed, self.reusable = True, False
        if self._transport is not None:
            self._transport.close()

    def _read_head(self, data: bytes) -> bytes:
        """Parse the head once complete (skipping 1xx answers); the bytes after it."""
        self._head += data
        while True:
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > _MAX_HEAD_BYTES:
                    raise Broken("the container's answer headers are too long")
                return b""
            head, self._head = self._head[:end], self._head[end + 4 :]
            status, headers = _parse_head(head)
            if not 100 <= status < 200:
                rest, self._head = self._head, b""
                self._begin_body(status, headers)
                return rest

    def _begin_body(self, status: int, headers: dict[str, str]) -> None:
        self._answer = (status, headers)
        if headers.get("connection", "").lower() == "close":
            self.reusable = False
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if self._chunked:
            self.reusable = False  # rare from a serving container; bytes after the last chunk are not tracked
        declared = headers.get("content-length")
        if status in _NO_BODY_STATUSES:
            self._length = 0
        elif self._chunked:
            self._length = None
        elif declared is not None and declared.strip().isdigit():
            self._length = int(declared)
        elif declared is not None:
            raise Broken(f"the container's Content-Length {declared!r} is not a number")
        else:
            self._length, self.reusable = None, False  # the body ends with the connection

    def _read_body(self, data: bytes) -> None:
        if self._chunked:
            self._parts.append(data)
            self._received += len(data)
            body = _dechunk(b"".join(self._parts)) if data.endswith(b"\r\n") else None
            if body is not None:
                self._complete(body)
            return
        self._parts.append(data)
        self._received += len(data)
        if self._length is not None and self._received >= self._length:
            if self._received > self._length:
                self.reusable = False  # more than it declared: the connection is out of step
            joined = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self._complete(joined[: self._length])

    def _complete(self, body: bytes) -> None:
        settled, answer = self._settled, self._answer
        self._unwatch()
        self._settled, self._answer = None, None
        if settled is not None and answer is not None:
            settled(RelayedAnswer(answer[0], answer[1], body))

    def timed_out(self) -> None:
        self._fail(TimedOut())

    def _fail(self, exc: Exception) -> None:
        self._unwatch()
        settled, self._settled = self._settled, None
        if not self.closed:
            self.close()
        if settled is not None:
            settled(exc)

    def _unwatch(self) -> None:
        self._relay.unwatch(self)


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")  # one decode for the whole head
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise Broken(f"the container did not answer HTTP: {lines[0][:80].encode('latin-1')!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise Broken(f"the container sent a malformed header line: {line[:80].encode('latin-1')!r}")
        key = name.strip().lower()
        text = value.strip()
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        headers["connection"] = "close"
    return int(code), headers


def _dechunk(data: bytes) -> bytes | None:
    """The body of a complete chunked message (trailers dropped); None while incomplete."""
    parts: list[bytes] = []
    at = 0
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        size_text = data[at:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise Broken(f"the container sent a malformed chunk size {size_text[:20]!r}") from exc
        at = line_end + 2
        if size == 0:
            return b"".join(parts) if data.endswith(b"\r\n\r\n") or data[at:] == b"\r\n" else None
        if len(data) < at + size + 2:
            return None
        parts.append(data[at : at + size])
        at += size + 2


class NotConnected(Broken):
    """No server took the connection."""


def authority(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]
