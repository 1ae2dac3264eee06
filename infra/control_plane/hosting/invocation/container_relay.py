"""InvokeEndpoint's hop to the serving containers on the runtime front's event loop
(docs/performance.md#the-runtime-front).

The same contract as ``serving_chain.invoke_in_series`` (which the WSGI path, batch transform and the blocking cases
use): each container of an inference pipeline gets the previous one's answer; a connection that fails is retried once
on a fresh connection; a read timeout is never retried; ``HopFailed`` for every failure, with ``connect_failed`` when
no server took the connection (nothing was delivered, so the caller may wait for a replacement and send again).

Connections are kept alive per container address. Everything here runs on one event loop and is not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import NamedTuple, cast
from urllib.parse import urlsplit

from infra.control_plane.hosting.serving_chain import HopFailed, ServingProcess, hop_headers
from infra.runtime.api import ServingContainer

logger = logging.getLogger(__name__)

__all__ = ["ContainerRelay", "RelayedAnswer"]

CONNECT_TIMEOUT_SECONDS = 5.0  # as the WSGI path's urllib3 pools
_MAX_IDLE_PER_CONTAINER = 32  # kept-alive connections per container (bursts open more, closed after use)
_MAX_HEAD_BYTES = 64 * 1024  # a container's status line and headers
_NO_BODY_STATUSES = (204, 304)
_DEADLINE_SLACK_SECONDS = 0.001  # the loop's timers fire to the millisecond: a deadline this close has passed


class RelayedAnswer(NamedTuple):
    """A container's answer: its status, its headers (lower-case names) and its whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class _Broken(Exception):
    """The connection ended or sent something that is not HTTP before the answer was complete."""


class _TimedOut(Exception):
    """No complete answer within the read timeout."""


class _ContainerConnection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection to a container; one exchange at a time."""

    def __init__(self, relay: ContainerRelay, url: str) -> None:
        self._relay, self.url = relay, url
        self.host_line = f"Host: {_authority(url)}\r\n"
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[RelayedAnswer] | None = None
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

    def exchange(self, request: list[bytes], timeout: float) -> asyncio.Future[RelayedAnswer]:
        """Send ``request`` (head and body) and return the future answer."""
        assert self._transport is not None
        if self.closed or self._transport.is_closing():  # the container closed it since it was made or kept
            raise ConnectionResetError("the container closed the connection")
        self._waiter = self._loop.create_future()
        self.deadline = self._loop.time() + timeout
        self._relay.watch(self)
        self._head, self._answer, self._parts, self._received = b"", None, [], 0
        self._transport.writelines(request)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self._fail(_Broken("the container sent data it was not asked for"))
            return
        try:
            if self._answer is None:
                data = self._read_head(data)
                if self._waiter is None and data:
                    self.reusable = False  # an answer without a body, and bytes after it: out of step
            if self._answer is not None and data:
                self._read_body(data)
        except _Broken as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        self.reusable = False
        if self._answer is not None and self._length is None and not self._chunked:
            self._complete(b"".join(self._parts))  # a body delimited by the connection's end
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed, self.reusable = True, False
        self._relay.forget(self)
        self._fail(_Broken(str(exc) if exc else "the container closed the connection"))

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
                    raise _Broken("the container's answer headers are too long")
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
            raise _Broken(f"the container's Content-Length {declared!r} is not a number")
        else:
            self._length, self.reusable = None, False  # the body ends with the connection
        if self._length == 0:
            self._complete(b"")

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
        waiter, answer = self._waiter, self._answer
        self._unwatch()
        self._waiter, self._answer = None, None
        if waiter is not None and not waiter.done() and answer is not None:
            waiter.set_result(RelayedAnswer(answer[0], answer[1], body))

    def timed_out(self) -> None:
        self._fail(_TimedOut())

    def _fail(self, exc: Exception) -> None:
        self._unwatch()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if not self.closed:
            self.close()

    def _unwatch(self) -> None:
        self._relay.unwatch(self)


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")  # one decode for the whole head
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise _Broken(f"the container did not answer HTTP: {lines[0][:80].encode('latin-1')!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise _Broken(f"the container sent a malformed header line: {line[:80].encode('latin-1')!r}")
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
            raise _Broken(f"the container sent a malformed chunk size {size_text[:20]!r}") from exc
        at = line_end + 2
        if size == 0:
            return b"".join(parts) if data.endswith(b"\r\n\r\n") or data[at:] == b"\r\n" else None
        if len(data) < at + size + 2:
            return None
        parts.append(data[at : at + size])
        at += size + 2


class ContainerRelay:
    """Kept-alive connections to serving containers, by container URL, for one event loop."""

    def __init__(self, connect_timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self._connect_timeout = connect_timeout
        self._idle: dict[str, list[_ContainerConnection]] = {}
        self._waiting: set[_ContainerConnection] = set()  # exchanges owed an answer, each with its deadline
        self._sweeper: asyncio.TimerHandle | None = None  # one timer for them all, at the earliest deadline
        self._sweep_at = 0.0

    async def in_series(
        self,
        processes: Sequence[ServingProcess],
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        last_path: str = "/invocations",
    ) -> RelayedAnswer:
        """POST ``body`` through every container in order; the last one's answer (``HopFailed`` on any error)."""
        if len(processes) == 1 and "Content-Type" in headers:  # one container: the caller's headers as they are
            only = await self._post_once(processes[0], last_path, body, headers, timeout)
            if only.status >= 400:
                raise HopFailed(processes[0].hostname, only.status, only.body.decode("utf-8", errors="replace"))
            return only
        content_type = headers.get("Content-Type", "application/octet-stream")
        answer: RelayedAnswer | None = None
        for index, process in enumerate(processes):
            last = index == len(processes) - 1
            hop = hop_headers(headers, content_type, last)
            answer = await self._post_once(process, last_path if last else "/invocations", body, hop, timeout)
            if answer.status >= 400:
                raise HopFailed(process.hostname, answer.status, answer.body.decode("utf-8", errors="replace"))
            body = answer.body
            content_type = answer.headers.get("content-type", "application/octet-stream")
        assert answer is not None, "a model has at least one container"
        return answer

    def forget(self, connection: _ContainerConnection) -> None:
        """A connection that closed: out of the idle list; a container without idle connections is forgotten."""
        idle = self._idle.get(connection.url)
        if idle is not None and connection in idle:
            idle.remove(connection)
            if not idle:
                del self._idle[connection.url]

    def watch(self, connection: _ContainerConnection) -> None:
        """Time ``connection``'s exchange out at its deadline. One timer serves every exchange (a timer per call
        costs more than the rest of the relay's bookkeeping): it is set again only for an earlier deadline."""
        self._waiting.add(connection)
        if self._sweeper is None or connection.deadline < self._sweep_at:
            self._schedule_sweep(connection.deadline)

    def unwatch(self, connection: _ContainerConnection) -> None:
        self._waiting.discard(connection)

    def _schedule_sweep(self, when: float) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._sweep_at = when
        self._sweeper = asyncio.get_running_loop().call_at(when, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = asyncio.get_running_loop().time() + _DEADLINE_SLACK_SECONDS
        for connection in [c for c in self._waiting if c.deadline <= now]:
            connection.timed_out()
        if self._waiting:
            self._schedule_sweep(min(c.deadline for c in self._waiting))

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in list(self._idle.values()):
            for connection in list(idle):
                connection.close()
        self._idle.clear()

    async def _post_once(
        self, process: ServingProcess, path: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> RelayedAnswer:
        container = process.container
        try:
            try:
                return await self._post(container, path, body, headers, timeout, self._take_idle(container.url))
            except _TimedOut:
                raise
            except (_Broken, OSError) as exc:
                logger.info("POST %s to %s: %s; retrying on a fresh connection", path, process.hostname, exc)
                return await self._post(container, path, body, headers, timeout, None)
        except _TimedOut as exc:
            raise HopFailed(process.hostname, 0, "timed out", timed_out=True) from exc
        except _NotConnected as exc:
            raise HopFailed(process.hostname, 0, f"Container not reachable: {exc}", connect_failed=True) from exc
        except (_Broken, OSError) as exc:
            raise HopFailed(process.hostname, 0, f"Container not reachable: {exc}") from exc

    async def _post(
        self,
        container: ServingContainer,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        connection: _ContainerConnection | None,
    ) -> RelayedAnswer:
        if connection is None:
            connection = await self._connect(container)
        head = [f"POST {path} HTTP/1.1\r\n", connection.host_line, f"Content-Length: {len(body)}\r\n"]
        head += [f"{name}: {value}\r\n" for name, value in headers.items()]
        head.append("\r\n")
        answer = await connection.exchange(["".join(head).encode("latin-1"), body], timeout)
        if connection.reusable and not connection.closed:
            idle = self._idle.setdefault(connection.url, [])
            if len(idle) < _MAX_IDLE_PER_CONTAINER:
                idle.append(connection)
                return answer
        connection.close()
        return answer

    def _take_idle(self, url: str) -> _ContainerConnection | None:
        idle = self._idle.get(url)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _connect(self, container: ServingContainer) -> _ContainerConnection:
        """A new connection: over the container's unix socket when it has one (the process runtime's servers: no
        loopback TCP on either side), else over TCP to its URL."""
        url = container.url
        loop = asyncio.get_running_loop()
        try:
            unix = container.connect_unix()
            if unix is not None:
                _, connection = await loop.create_unix_connection(lambda: _ContainerConnection(self, url), sock=unix)
                return connection
            parts = urlsplit(url)
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _ContainerConnection(self, url), parts.hostname or "127.0.0.1", parts.port or 80
                ),
                self._connect_timeout,
            )
        except TimeoutError as exc:
            raise _Broken(f"connecting to {url} timed out") from exc
        except OSError as exc:
            raise _NotConnected(str(exc)) from exc
        return connection


class _NotConnected(_Broken):
    """No server took the connection."""


def _authority(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]
