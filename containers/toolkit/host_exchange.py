"""Host-to-host exchange of a multi-instance training job for the dense built-ins (K-Means, PCA)
(docs/algorithms/kmeans.md#distributed-training).

The first sorted host (``algo-1``) is the leader: it listens on its own address on the job's network (``algo-1``
resolves to 127.0.0.1 in the process runtime, to its container address on the job's Docker network) and every other
host connects to it. Two collective steps build everything else: :meth:`HostGroup.gather` (every host's payload to
the leader) and :meth:`HostGroup.broadcast` (the leader's payload to every host). A payload is a name -> numpy array
mapping sent as an MXNet NDArray list (``containers.toolkit.ndarray_file``): no pickle ever crosses the wire.

Frames: ``4s`` magic, ``uint8`` kind, ``uint64`` body length (little-endian), then the body. ``HELLO`` (JSON: host,
job) opens a worker's connection; ``DATA`` carries a payload; ``ABORT`` (JSON: host, kind, message) tells the others
that a host failed, so they fail at once with its reason instead of waiting. Every wait is bounded: joining by
``connect_timeout`` seconds, each message by ``message_timeout`` seconds; a closed connection is an immediate error.
A group of one host never opens a socket.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from containers.toolkit import ndarray_file
from containers.toolkit.environment import resolve_host
from containers.toolkit.errors import PlatformError, ToolkitError

logger = logging.getLogger(__name__)

__all__ = ["ExchangeSettings", "HostGroup", "Payload", "PeerFailedError"]

Payload = dict[str, np.ndarray]

# The runtime hands every job a free port (pair) for host-to-host traffic; the variable is named after XGBoost's
# tracker, its first user. 9099 when unset (each Docker job has a network of its own).
PORT_ENV = "SAGESTACK_RABIT_PORT"
DEFAULT_PORT = 9099
CONNECT_TIMEOUT_ENV = "SAGESTACK_HOSTS_CONNECT_TIMEOUT"
MESSAGE_TIMEOUT_ENV = "SAGESTACK_HOSTS_MESSAGE_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 300.0
DEFAULT_MESSAGE_TIMEOUT = 3600.0

_MAGIC = b"SGX1"
_HEADER = struct.Struct("<4sBQ")
_HELLO, _DATA, _ABORT = 1, 2, 3
_RETRY_SECONDS = 0.2


class PeerFailedError(ToolkitError):
    """Another host of the job failed; carries that host's error kind so the failure reads the same everywhere."""

    def __init__(self, host: str, kind: str, message: str) -> None:
        super().__init__(f"host {host} failed: {message}")
        self.kind = kind
        self.host = host


@dataclass(frozen=True)
class ExchangeSettings:
    port: int = DEFAULT_PORT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    message_timeout: float = DEFAULT_MESSAGE_TIMEOUT

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ExchangeSettings:
        return cls(
            port=int(_number(environ, PORT_ENV, DEFAULT_PORT)),
            connect_timeout=_number(environ, CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT),
            message_timeout=_number(environ, MESSAGE_TIMEOUT_ENV, DEFAULT_MESSAGE_TIMEOUT),
        )


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise PlatformError(f"{name}={raw!r} is not a number") from exc
    if value <= 0:
        raise PlatformError(f"{name}={raw!r} must be positive")
    return value


def encode_payload(payload: Mapping[str, np.ndarray]) -> bytes:
    arrays = [np.atleast_1d(np.asarray(value)) for value in payload.values()]
    return ndarray_file.dumps(arrays, list(payload))


def decode_payload(body: bytes) -> Payload:
    arrays, names = ndarray_file.loads(body)
    return dict(zip(names, arrays, strict=True))


class _Link:
    """One framed TCP connection to a peer host."""

    def __init__(self, sock: socket.socket, peer: str, timeout: float) -> None:
        self.sock = sock
        self.peer = peer
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, kind: int, body: bytes) -> None:
        try:
            self.sock.sendall(_HEADER.pack(_MAGIC, kind, len(body)) + body)
        except OSError as exc:
            raise PlatformError(f"lost the connection to host {self.peer} while sending: {exc}") from exc

    def receive(self) -> tuple[int, bytes]:
        magic, kind, length = _HEADER.unpack(self._exactly(_HEADER.size))
        if magic != _MAGIC:
            raise PlatformError(f"host {self.peer} sent a frame that is not part of this job's exchange")
        return kind, self._exactly(length)

    def _exactly(self, size: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            try:
                chunk = self.sock.recv(min(size - len(chunks), 1 << 22))
            except TimeoutError as exc:
                raise PlatformError(
                    f"host {self.peer} sent nothing for {self.sock.gettimeout():.0f} s; giving up"
                ) from exc
            except OSError as exc:
                raise PlatformError(f"lost the connection to host {self.peer}: {exc}") from exc
            if not chunk:
                raise PlatformError(f"host {self.peer} closed the connection (it stopped or failed)")
            chunks += chunk
        return bytes(chunks)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class HostGroup:
    """The hosts of one training job; use as a context manager (``with HostGroup(...) as group``)."""

    def __init__(
        self, hosts: Sequence[str], current: str, job_name: str, settings: ExchangeSettings | None = None
    ) -> None:
        self.hosts = tuple(sorted(hosts))
        if current not in self.hosts:
            raise PlatformError(f"current host {current} is not one of the job's hosts {', '.join(self.hosts)}")
        self.current = current
        self.job_name = job_name
        self.settings = settings or ExchangeSettings()
        self._links: dict[str, _Link] = {}

    @property
    def leader(self) -> str:
        return self.hosts[0]

    @property
    def is_leader(self) -> bool:
        return self.current == self.leader

    @property
    def size(self) -> int:
        return len(self.hosts)

    def __enter__(self) -> HostGroup:
        if self.size > 1:
            if self.is_leader:
                self._accept_workers()
            else:
                self._join_leader()
            logger.info("host %s joined the %d hosts of the job (leader %s)", self.current, self.size, self.leader)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, PeerFailedError):
            self._abort_peers(exc)
        for link in self._links.values():
            link.close()
        self._links.clear()

    def gather(self, payload: Mapping[str, np.ndarray]) -> list[Payload] | None:
        """Every host's payload, in host order, on the leader; ``None`` on the other hosts."""
        if self.size == 1:
            return [dict(payload)]
        if not self.is_leader:
            self._links[self.leader].send(_DATA, encode_payload(payload))
            return None
        gathered = [dict(payload)]
        for host in self.hosts[1:]:
            gathered.append(self._receive_data(self._links[host]))
        return gathered

    def broadcast(self, payload: Mapping[str, np.ndarray] | None) -> Payload:
        """The leader's payload on every host (the other hosts pass ``None``)."""
        if self.is_leader:
            if payload is None:
                raise ValueError("the leader must give the payload to broadcast")
            if self.size > 1:
                body = encode_payload(payload)
                for host in self.hosts[1:]:
                    self._links[host].send(_DATA, body)
            return dict(payload)
        return self._receive_data(self._links[self.leader])

    def allreduce_sum(self, payload: Mapping[str, np.ndarray]) -> Payload:
        """The element-wise sum over the hosts of every array, on every host."""
        gathered = self.gather(payload)
        total = None
        if gathered is not None:
            total = {name: np.sum([part[name] for part in gathered], axis=0) for name in payload}
        return self.broadcast(total)

    # -- joining --------------------------------------------------------------------------------------------------

    def _accept_workers(self) -> None:
        address = resolve_host(self.leader, timeout_seconds=self.settings.connect_timeout)
        deadline = time.monotonic() + self.settings.connect_timeout
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((address, self.settings.port))
            except OSError as exc:
                where = f"{address}:{self.settings.port}"
                raise PlatformError(f"host {self.leader} cannot listen on {where}: {exc}") from exc
            listener.listen(self.size)
            logger.info("host %s waits for %d hosts on %s:%d", self.leader, self.size - 1, address, self.settings.port)
            while len(self._links) < self.size - 1:
                self._accept_one(listener, deadline)
        finally:
            listener.close()

    def _accept_one(self, listener: socket.socket, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        missing = [host for host in self.hosts[1:] if host not in self._links]
        if remaining <= 0:
            raise PlatformError(
                f"host(s) {', '.join(missing)} did not connect to {self.leader} within "
                f"{self.settings.connect_timeout:.0f} s (they failed to start or cannot reach it)"
            )
        listener.settimeout(remaining)
        try:
            sock, _ = listener.accept()
        except TimeoutError:
            return
        link = _Link(sock, "unknown", min(remaining, self.settings.message_timeout))
        try:
            kind, body = link.receive()
            hello = json.loads(body) if kind == _HELLO else {}
        except (PlatformError, ValueError) as exc:
            logger.warning("dropped a connection that did not introduce itself: %s", exc)
            link.close()
            return
        host = hello.get("host")
        if hello.get("job") != self.job_name or host not in missing:
            logger.warning("dropped a connection from %r of job %r", host, hello.get("job"))
            link.close()
            return
        link.peer = str(host)
        link.sock.settimeout(self.settings.message_timeout)
        self._links[link.peer] = link

    def _join_leader(self) -> None:
        deadline = time.monotonic() + self.settings.connect_timeout
        address = resolve_host(self.leader, timeout_seconds=self.settings.connect_timeout)
        last_error: OSError | None = None
        while time.monotonic() < deadline:
            try:
                sock = socket.create_connection((address, self.settings.port), timeout=_RETRY_SECONDS * 10)
            except OSError as exc:
                last_error = exc
                time.sleep(_RETRY_SECONDS)
                continue
            link = _Link(sock, self.leader, self.settings.message_timeout)
            link.send(_HELLO, json.dumps({"host": self.current, "job": self.job_name}).encode())
            self._links[self.leader] = link
            return
        raise PlatformError(
            f"host {self.current} could not connect to {self.leader} at {address}:{self.settings.port} within "
            f"{self.settings.connect_timeout:.0f} s: {last_error}"
        )

    # -- messages -------------------------------------------------------------------------------------------------

    def _receive_data(self, link: _Link) -> Payload:
        kind, body = link.receive()
        if kind == _ABORT:
            report: dict[str, Any] = json.loads(body)
            raise PeerFailedError(str(report.get("host")), str(report.get("kind")), str(report.get("message")))
        if kind != _DATA:
            raise PlatformError(f"host {link.peer} sent an unexpected frame (kind {kind})")
        try:
            return decode_payload(body)
        except ndarray_file.NDArrayFileError as exc:
            raise PlatformError(f"host {link.peer} sent an unreadable payload: {exc}") from exc

    def _abort_peers(self, exc: Exception) -> None:
        kind = exc.kind if isinstance(exc, ToolkitError) else "AlgorithmError"
        message = exc.message if isinstance(exc, ToolkitError) else f"{type(exc).__name__}: {exc}"
        body = json.dumps({"host": self.current, "kind": kind, "message": message}).encode()
        for link in self._links.values():
            try:
                link.sock.settimeout(5.0)
                link.send(_ABORT, body)
            except (PlatformError, OSError):
                logger.debug("could not tell host %s about the failure", link.peer)
