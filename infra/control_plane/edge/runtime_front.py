"""The runtime front: the stack's one listening port, served by an event loop (docs/performance.md#the-runtime-front).

InvokeEndpoint requests of the shape AWS clients send (``request_head``) are answered here: the edge's guards and
SigV4 check, then ``InvokeFront.handle_relayed``, which reaches the containers over kept-alive connections
(``ContainerRelay``). Any other request — the control plane, S3 and every other service, the console, InvokeEndpoint
in a shape read only by the WSGI server — hands its connection, with the bytes already read, to the WSGI server
(``hand_off``), which serves it for the rest of its life exactly as it serves a connection it accepted itself.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from socket import socket
from typing import Any, cast

import uvloop

from infra.control_plane.edge.http_guards import REASONS
from infra.control_plane.edge.request_head import (
    MAX_HEAD_BYTES,
    HeadTemplate,
    InvokeHead,
    invoke_endpoint_name,
    parse_invoke_head,
)
from infra.control_plane.edge.routing import EdgeApp
from infra.control_plane.hosting.invocation.container_relay import ContainerRelay
from infra.control_plane.hosting.invocation.sagemaker_runtime import MAX_PAYLOAD_BYTES, Reply

logger = logging.getLogger(__name__)

__all__ = ["HandOff", "RuntimeFront"]

HandOff = Callable[[int, bytes, Any], None]  # (a duplicate of the connection's fd, bytes read, peer address)
_MAX_REQUEST_LINE = 8 * 1024  # without a line end by then: the WSGI server answers it
_MAX_PENDING = 256 * 1024  # bytes read ahead while a request is answered (pipelining): reading pauses beyond
_FLUSH_POLL_SECONDS = 0.005  # how often a connection to hand off looks whether its last answer has left
_BLOCKING_THREADS = 256  # calls that may wait (serverless, multi-model, a replacement), served at once
_INTERNAL_ERROR = b'{"message": "Internal error"}'  # what InvokeFront did not answer itself (it answers all)


class RuntimeFront:
    """Accepts on ``listener`` in a thread of its own; ``start`` returns once it accepts, ``stop`` ends it."""

    def __init__(self, app: EdgeApp, listener: socket, hand_off: HandOff, timeout_seconds: float) -> None:
        self._app, self._listener, self.hand_off = app, listener, hand_off
        self.timeout_seconds = timeout_seconds
        self.loop = uvloop.new_event_loop()
        self._relay = ContainerRelay()
        self._blocking_pool = ThreadPoolExecutor(_BLOCKING_THREADS, thread_name_prefix="sagestack-invoke")
        self.connections: set[_ClientConnection] = set()
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._date = (0, "")

    def start(self) -> None:
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name="sagestack-edge", daemon=True)
        self._thread.start()
        started.wait()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def stop(self) -> None:
        """Stop accepting, end every connection the front holds, and wait for its thread."""
        if self._thread is None or not self._thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self._close)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._blocking_pool.shutdown(wait=False, cancel_futures=True)

    def takes(self, head: InvokeHead) -> bool:
        return self._app.takes_invocation(head.environ)

    def answer(self, head: InvokeHead, body: bytes, answered: Callable[[Reply], None]) -> None:
        """Answer the call through ``answered``: now (a refusal, an error), from the container connection's callback
        (no task per call), or from a task or thread when it must wait."""
        self._app.relay_invocation(head.environ, (head.endpoint, body), self._relay, self._blocking, answered)

    def date(self) -> str:
        """The ``Date`` header, formatted once a second."""
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True))
        return self._date[1]

    def _blocking(self, call: Callable[[], Reply], answered: Callable[[Reply], None]) -> None:
        """Run ``call`` on a thread of the pool; its reply to ``answered`` on the loop."""
        waiting = asyncio.wrap_future(self._blocking_pool.submit(call), loop=self.loop)
        waiting.add_done_callback(functools.partial(_answer_from, answered))

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self._server = self.loop.run_until_complete(
                self.loop.create_server(lambda: _ClientConnection(self), sock=self._listener)
            )
            self.loop.call_later(self._sweep_period(), self._sweep)
        finally:
            started.set()
        try:
            self.loop.run_forever()
        finally:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()

    def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.abort()
        self._relay.close()
        self.loop.stop()

    def _sweep_period(self) -> float:
        return min(max(self.timeout_seconds / 4, 0.05), 5.0)

    def _sweep(self) -> None:
        """End connections silent for the request timeout while no answer is owed to them (stalled or idle)."""
        deadline = time.monotonic() - self.timeout_seconds
        for connection in list(self.connections):
            if connection.idle_since(deadline):
                connection.abort()
        self.loop.call_later(self._sweep_period(), self._sweep)


class _ClientConnection(asyncio.Protocol):
    """One client connection while the front serves it: heads read strictly, one request answered at a time."""

    def __init__(self, front: RuntimeFront) -> None:
        self._front = front
        self._transport: asyncio.Transport | None = None
        self._peer: Any = None
        self._remote_addr = ""
        self._buffer = b""  # bytes read and not yet part of a request being answered
        self._head: InvokeHead | None = None  # the request whose body is being read
        self._parts: list[bytes] = []
        self._received = 0
        self._busy = False  # an answer is owed
        self._paused = False
        self._handing_off = False  # waiting for the last answer to leave before the hand-off
        self._drained: asyncio.Future[None] | None = None
        self._active_at = time.monotonic()
        self._template: HeadTemplate | None = None  # the last head taken, for the same call again

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports implement it without subclassing
        self._peer = transport.get_extra_info("peername")
        self._remote_addr = str(self._peer[0]) if self._peer else ""
        self._front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._front.connections.discard(self)
        self._transport = None
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def idle_since(self, deadline: float) -> bool:
        """Silent since before ``deadline`` while owed nothing, or while not reading the answer it was sent."""
        return (not self._busy or self._drained is not None) and self._active_at < deadline

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def pause_writing(self) -> None:
        self._drained = self._front.loop.create_future()

    def resume_writing(self) -> None:
        self._active_at = time.monotonic()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def data_received(self, data: bytes) -> None:
        self._active_at = time.monotonic()
        if self._head is not None:
            self._read_body(data)
            return
        self._buffer = self._buffer + data if self._buffer else data
        if self._handing_off:
            return
        if not self._busy:
            self._read_head()
        elif len(self._buffer) > _MAX_PENDING and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True

    def _read_head(self) -> None:
        buffer = self._buffer
        if self._template is not None:
            head_end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES)
            repeated = self._template.read(buffer[:head_end], MAX_PAYLOAD_BYTES) if head_end > 0 else None
            if repeated is not None:  # read and guarded as the last head was: the same call again
                self._take(repeated, buffer, head_end)
                return
        line_end = buffer.find(b"\r\n", 0, _MAX_REQUEST_LINE)
        if line_end < 0:
            if len(buffer) >= _MAX_REQUEST_LINE or (buffer and not _may_start_invoke(buffer)):
                self._hand_off()
            return
        if invoke_endpoint_name(buffer[:line_end]) is None:
            self._hand_off()
            return
        head_end = buffer.find(b"\r\n\r\n", line_end)
        if head_end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                self._hand_off()
            return
        raw = buffer[:head_end]
        head = parse_invoke_head(raw, MAX_PAYLOAD_BYTES)
        if head is not None:
            head.environ["REMOTE_ADDR"] = self._remote_addr
        if head is None or not self._front.takes(head):
            self._hand_off()
            return
        self._template = HeadTemplate.of(raw, head)
        self._take(head, buffer, head_end)

    def _take(self, head: InvokeHead, buffer: bytes, head_end: int) -> None:
        self._head, self._buffer, self._parts, self._received = head, b"", [], 0
        self._read_body(buffer[head_end + 4 :])

    def _read_body(self, data: bytes) -> None:
        head = self._head
        assert head is not None
        missing = head.content_length - self._received
        if data:
            part = data if len(data) <= missing else data[:missing]
            self._parts.append(part)
            self._received += len(part)
            self._buffer = data[missing:] if len(data) > missing else b""
        if self._received < head.content_length:
            return
        body = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._head, self._parts, self._busy = None, [], True
        try:
            self._front.answer(head, body, functools.partial(self._send, head))
        except Exception:
            logger.exception("InvokeEndpoint %s failed at the runtime front", head.endpoint)
            if self._busy:  # not answered yet
                head.close = True
                self._send(head, Reply(500, [("Content-Type", "application/json")], _INTERNAL_ERROR))

    def _send(self, head: InvokeHead, reply: Reply) -> None:
        """Write the answer owed, then read the next request (after the client has read this answer)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            self._busy = False
            return
        self._active_at = time.monotonic()
        transport.writelines([self._response_head(reply, head.close), reply.body])
        if head.close:
            self._busy = False
            transport.close()
            return
        if self._drained is not None:  # the client reads slower than it asks: wait before reading its next request
            self._drained.add_done_callback(lambda _: self._next())
            return
        self._next()

    def _next(self) -> None:
        self._busy = False
        transport = self._transport
        if transport is None:
            return
        if self._paused:
            self._paused = False
            transport.resume_reading()
        if self._buffer and not transport.is_closing():
            # on a later turn: answers given at once (a refusal, an error) do not nest one call per pipelined request
            self._front.loop.call_soon(self._read_pipelined)

    def _read_pipelined(self) -> None:
        idle = not (self._busy or self._handing_off) and self._head is None
        if self._transport is not None and idle and self._buffer:
            self._read_head()

    def _response_head(self, reply: Reply, close: bool) -> bytes:
        lines = [f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}\r\nDate: {self._front.date()}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in reply.headers]
        lines.append(
            f"Content-Length: {len(reply.body)}\r\nConnection: close\r\n\r\n"
            if close
            else f"Content-Length: {len(reply.body)}\r\n\r\n"
        )
        return "".join(lines).encode("latin-1")

    def _hand_off(self) -> None:
        """Give the connection, with the bytes read from the current request on, to the WSGI server, once the
        answers already written have left (the WSGI server's answer must not pass them)."""
        if self._transport is None or self._transport.is_closing():
            return
        if self._transport.get_write_buffer_size():
            if not self._handing_off:
                self._handing_off = True
                self._transport.pause_reading()
            self._front.loop.call_later(_FLUSH_POLL_SECONDS, self._hand_off)
            return
        transport, prefix = self._transport, self._buffer
        self._buffer, self._transport = b"", None
        self._front.connections.discard(self)
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        try:
            duplicate = os.dup(sock.fileno())
        except OSError:
            logger.warning("could not hand a connection to the WSGI server", exc_info=True)
            transport.abort()
            return
        transport.abort()  # closes the front's descriptor only: the connection lives on in the duplicate
        self._front.hand_off(duplicate, prefix, self._peer)


def _answer_from(answered: Callable[[Reply], None], waiting: asyncio.Future[Reply]) -> None:
    """Hand a thread's reply to ``answered`` (the blocking path's calls catch what they raise)."""
    try:
        reply = waiting.result()
    except Exception as exc:
        logger.error("InvokeEndpoint failed on the blocking path", exc_info=exc)
        reply = Reply(500, [("Content-Type", "application/json")], _INTERNAL_ERROR)
    answered(reply)


def _may_start_invoke(buffer: bytes) -> bool:
    """Whether an incomplete request line can still become an InvokeEndpoint POST."""
    prefix = b"POST /endpoints/"
    return buffer[: len(prefix)] == prefix[: len(buffer)]
