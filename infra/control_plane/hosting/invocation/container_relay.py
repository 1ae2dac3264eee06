"""InvokeEndpoint's hop to the serving containers on the runtime front's event loop
(docs/performance.md#the-runtime-front).

The same contract as ``serving_chain.invoke_in_series`` (which the WSGI path, batch transform and the blocking cases
use): each container of an inference pipeline gets the previous one's answer; a connection that fails is retried once
on a fresh connection; a read timeout is never retried; ``HopFailed`` for every failure, with ``connect_failed`` when
no server took the connection (nothing was delivered, so the caller may wait for a replacement and send again).
``in_series`` is a coroutine; ``send`` takes a callback instead, and a call to one container over a kept-alive
connection is then answered from that connection's ``data_received``, with no task or future per call.

Connections are kept alive per container address. Everything here runs on one event loop and is not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from infra.control_plane.hosting.invocation.container_connection import (
    Broken,
    ContainerConnection,
    NotConnected,
    RelayedAnswer,
    TimedOut,
)
from infra.control_plane.hosting.serving_chain import HopFailed, ServingProcess, hop_headers
from infra.runtime.api import ServingContainer

logger = logging.getLogger(__name__)

__all__ = ["ContainerRelay", "Delivered", "RelayedAnswer"]

Delivered = Callable[[RelayedAnswer | HopFailed], None]  # what ``ContainerRelay.send`` calls with the outcome

CONNECT_TIMEOUT_SECONDS = 5.0  # as the WSGI path's urllib3 pools
_MAX_IDLE_PER_CONTAINER = 32  # kept-alive connections per container (bursts open more, closed after use)
_DEADLINE_SLACK_SECONDS = 0.001  # the loop's timers fire to the millisecond: a deadline this close has passed


class ContainerRelay:
    """Kept-alive connections to serving containers, by container URL, for one event loop."""

    def __init__(self, connect_timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self._connect_timeout = connect_timeout
        self._idle: dict[str, list[ContainerConnection]] = {}
        self._waiting: set[ContainerConnection] = set()  # exchanges owed an answer, each with its deadline
        self._sweeper: asyncio.TimerHandle | None = None  # one timer for them all, at the earliest deadline
        self._sweep_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()  # ``send``'s tasks, held until done (the loop holds them weakly)

    async def in_series(
        self,
        processes: Sequence[ServingProcess],
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        last_path: str = "/invocations",
    ) -> RelayedAnswer:
        """POST ``body`` through every container in order; the last one's answer (``HopFailed`` on any error)."""
        if _one_hop(processes, headers):
            return _checked(processes[0], await self._post_once(processes[0], last_path, body, headers, timeout))
        content_type = headers.get("Content-Type", "application/octet-stream")
        answer: RelayedAnswer | None = None
        for index, process in enumerate(processes):
            last = index == len(processes) - 1
            hop = hop_headers(headers, content_type, last)
            answer = _checked(
                process, await self._post_once(process, last_path if last else "/invocations", body, hop, timeout)
            )
            body = answer.body
            content_type = answer.headers.get("content-type", "application/octet-stream")
        assert answer is not None, "a model has at least one container"
        return answer

    def send(
        self,
        processes: Sequence[ServingProcess],
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        last_path: str,
        delivered: Delivered,
    ) -> None:
        """``in_series`` for a caller on the loop that takes the outcome by callback: the answer, or ``HopFailed``.
        One container with a kept-alive connection idle is answered from that connection's callbacks (no task);
        anything else (a pipeline, a new connection) runs ``in_series`` in a task."""
        connection = self._take_idle(processes[0].container.url) if _one_hop(processes, headers) else None
        if connection is not None:
            post = (last_path, body, headers, timeout)
            settled = partial(self._kept_answered, processes[0], connection, post, delivered)
            try:
                connection.exchange(self._request(connection, last_path, body, headers), timeout, settled)
                return
            except OSError:
                connection.close()
        self._spawn(self.in_series(processes, body, headers, timeout, last_path), processes[0].hostname, delivered)

    def _kept_answered(
        self,
        process: ServingProcess,
        connection: ContainerConnection,
        post: tuple[str, bytes, Mapping[str, str], float],
        delivered: Delivered,
        outcome: RelayedAnswer | Exception,
    ) -> None:
        """One exchange of ``send`` settled: answered (kept again), timed out, or failed (``post``, its path, body,
        headers and timeout, sent again on a fresh connection, as ``_post_once`` does)."""
        if isinstance(outcome, RelayedAnswer):
            self._keep(connection)
            delivered(_hop_failure(process, outcome) or outcome)
        elif isinstance(outcome, TimedOut):
            delivered(_timed_out(process))
        else:
            logger.info("POST to %s: %s; retrying on a fresh connection", process.hostname, outcome)
            retried = _checked_later(process, self._post_once(process, *post, fresh=True))
            self._spawn(retried, process.hostname, delivered)

    def _spawn(self, outcome: Coroutine[Any, Any, RelayedAnswer], hostname: str, delivered: Delivered) -> None:
        """Run ``outcome`` in a task and hand its answer or ``HopFailed`` to ``delivered``."""
        task = asyncio.get_running_loop().create_task(_deliver(outcome, hostname, delivered))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, connection: ContainerConnection) -> None:
        """A connection that closed: out of the idle list; a container without idle connections is forgotten."""
        idle = self._idle.get(connection.url)
        if idle is not None and connection in idle:
            idle.remove(connection)
            if not idle:
                del self._idle[connection.url]

    def watch(self, connection: ContainerConnection) -> None:
        """Time ``connection``'s exchange out at its deadline. One timer serves every exchange (a timer per call
        costs more than the rest of the relay's bookkeeping): it is set again only for an earlier deadline."""
        self._waiting.add(connection)
        if self._sweeper is None or connection.deadline < self._sweep_at:
            self._schedule_sweep(connection.deadline)

    def unwatch(self, connection: ContainerConnection) -> None:
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
        self,
        process: ServingProcess,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        *,
        fresh: bool = False,
    ) -> RelayedAnswer:
        """One POST, on a kept-alive connection if there is one (sent again once on a fresh one if that fails), or
        on a fresh one only (``fresh``)."""
        container = process.container
        try:
            try:
                kept = None if fresh else self._take_idle(container.url)
                return await self._post(container, path, body, headers, timeout, kept)
            except TimedOut:
                raise
            except (Broken, OSError) as exc:
                if fresh:
                    raise
                logger.info("POST %s to %s: %s; retrying on a fresh connection", path, process.hostname, exc)
                return await self._post(container, path, body, headers, timeout, None)
        except TimedOut as exc:
            raise _timed_out(process) from exc
        except NotConnected as exc:
            raise HopFailed(process.hostname, 0, f"Container not reachable: {exc}", connect_failed=True) from exc
        except (Broken, OSError) as exc:
            raise HopFailed(process.hostname, 0, f"Container not reachable: {exc}") from exc

    async def _post(
        self,
        container: ServingContainer,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        connection: ContainerConnection | None,
    ) -> RelayedAnswer:
        if connection is None:
            connection = await self._connect(container)
        settled: asyncio.Future[RelayedAnswer] = asyncio.get_running_loop().create_future()
        connection.exchange(self._request(connection, path, body, headers), timeout, partial(_settle, settled))
        answer = await settled
        self._keep(connection)
        return answer

    @staticmethod
    def _request(connection: ContainerConnection, path: str, body: bytes, headers: Mapping[str, str]) -> list[bytes]:
        head = [f"POST {path} HTTP/1.1\r\n", connection.host_line, f"Content-Length: {len(body)}\r\n"]
        head += [f"{name}: {value}\r\n" for name, value in headers.items()]
        head.append("\r\n")
        return ["".join(head).encode("latin-1"), body]

    def _keep(self, connection: ContainerConnection) -> None:
        """An answered connection back to the idle list, or closed (not reusable, or the list is full)."""
        if connection.reusable and not connection.closed:
            idle = self._idle.setdefault(connection.url, [])
            if len(idle) < _MAX_IDLE_PER_CONTAINER:
                idle.append(connection)
                return
        connection.close()

    def _take_idle(self, url: str) -> ContainerConnection | None:
        idle = self._idle.get(url)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _connect(self, container: ServingContainer) -> ContainerConnection:
        """A new connection: over the container's unix socket when it has one (the process runtime's servers: no
        loopback TCP on either side), else over TCP to its URL."""
        url = container.url
        loop = asyncio.get_running_loop()
        try:
            unix = container.connect_unix()
            if unix is not None:
                _, connection = await loop.create_unix_connection(lambda: ContainerConnection(self, url), sock=unix)
                return connection
            parts = urlsplit(url)
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: ContainerConnection(self, url), parts.hostname or "127.0.0.1", parts.port or 80
                ),
                self._connect_timeout,
            )
        except TimeoutError as exc:
            raise Broken(f"connecting to {url} timed out") from exc
        except OSError as exc:
            raise NotConnected(str(exc)) from exc
        return connection


def _hop_failure(process: ServingProcess, answer: RelayedAnswer) -> HopFailed | None:
    """The failure an error status is (None for an answer)."""
    if answer.status >= 400:
        return HopFailed(process.hostname, answer.status, answer.body.decode("utf-8", errors="replace"))
    return None


def _one_hop(processes: Sequence[ServingProcess], headers: Mapping[str, str]) -> bool:
    """One container, sent the caller's headers as they are."""
    return len(processes) == 1 and "Content-Type" in headers


def _timed_out(process: ServingProcess) -> HopFailed:
    return HopFailed(process.hostname, 0, "timed out", timed_out=True)


def _checked(process: ServingProcess, answer: RelayedAnswer) -> RelayedAnswer:
    """``answer``, or ``HopFailed`` raised for an error status."""
    failure = _hop_failure(process, answer)
    if failure is not None:
        raise failure
    return answer


async def _checked_later(process: ServingProcess, answer: Coroutine[Any, Any, RelayedAnswer]) -> RelayedAnswer:
    return _checked(process, await answer)


def _settle(settled: asyncio.Future[RelayedAnswer], outcome: RelayedAnswer | Exception) -> None:
    if settled.done():
        return
    if isinstance(outcome, Exception):
        settled.set_exception(outcome)
    else:
        settled.set_result(outcome)


async def _deliver(outcome: Coroutine[Any, Any, RelayedAnswer], hostname: str, delivered: Delivered) -> None:
    """``delivered`` is called whatever happens: a caller waits for it (an unforeseen error is a failed hop)."""
    try:
        answer: RelayedAnswer | HopFailed = await outcome
    except HopFailed as exc:
        answer = exc
    except Exception as exc:
        logger.error("POST to %s failed", hostname, exc_info=exc)
        answer = HopFailed(hostname, 0, f"Container not reachable: {type(exc).__name__}")
    delivered(answer)
