"""A started ``serve`` process, its readiness check (docs/reference/container-contract.md#serving), and its unix socket.

The unix socket is what the stack's runtime front reaches the server through (docs/performance.md#the-runtime-front):
the process runtime asks the serving toolkit to listen on ``/opt/ml/serve.sock`` as well as on its TCP port
(``SAGESTACK_BIND_TO_UNIX_SOCKET``); gunicorn makes it mode 0600, owned by the container's user. The socket lies in
a directory the job controls, so its path is resolved once, when the server is ready: opened without following a
link (``O_PATH | O_NOFOLLOW``) and kept only when it is a socket owned by the job directory's owner. Connections then
go through that descriptor (``/proc/self/fd/<n>``), never through the path again: a job that later swaps the path
for a link to another socket of the machine cannot redirect the stack's requests there. A server that does not
listen there (an image with a server of its own) is reached over TCP, as the Docker runtime's containers are.

A ``/ping`` answered on the TCP port proves the container ready only when the socket listening there is the
container's own: another process (another stack's server, picked the same port a moment earlier) answers ``/ping``
too, and every request would then reach it. So readiness also checks, in ``/proc``, that the listening socket is held
by a process of the container's session (docs/security.md#what-jobs-listen-on).
"""

from __future__ import annotations

import enum
import logging
import os
import random
import socket
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TypeVar

from infra.runtime.errors import ServingPortTakenError, ServingStartupError
from infra.runtime.process.host_process import HostProcess, describe_exit
from infra.runtime.process.process_ledger import live_processes

logger = logging.getLogger(__name__)

__all__ = [
    "UNIX_SOCKET_ENV",
    "ListenerOwner",
    "ProcessServingContainer",
    "ServingSocket",
    "free_port",
    "is_listened_on",
    "listener_owner",
    "serving_environment",
    "serving_socket_environment",
    "start_when_healthy",
    "wait_until_healthy",
    "with_port_retries",
]

PING_TIMEOUT_SECONDS = 2.0  # each GET /ping try (docs/reference/container-contract.md#http-server)
_PING_INTERVAL_SECONDS = 0.1
PORT_ATTEMPTS = 3  # a server whose port another process took is started again on a new one, this often in all
T = TypeVar("T")


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LISTEN_SPAN = 24576  # ports below the kernel's ephemeral range that listeners are picked from (8192-32767)
_PICKER = random.SystemRandom()  # not the global generator: a test that seeds it must not make two stacks agree


def _listen_ports() -> range:
    """Ports the kernel never gives an outgoing connection: those below its ephemeral range. A port the kernel
    reports free from that range could be taken by any client's connect() before the listener binds it (an XGBoost
    tracker failed so with EADDRINUSE while the suite's clients churned loopback connections)."""
    try:
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    return range(max(1024, low - _LISTEN_SPAN), low)


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", attempts: int = 64) -> int:
    """A TCP port free on ``host`` below the ephemeral range (docs/security.md#what-jobs-listen-on): no outgoing
    connection takes it before its listener binds it; only another listener could (rare: the pick is random)."""
    candidates = _listen_ports()
    if len(candidates) >= 256:
        for _ in range(attempts):
            port = _PICKER.choice(candidates)
            if _bindable(host, port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # the kernel's own pick, as a last resort
        sock.bind((host, 0))
        picked: int = sock.getsockname()[1]
        return picked


def free_port_pair(host: str = "127.0.0.1", attempts: int = 20) -> int:
    """A free port ``p`` whose neighbour ``p + 1`` is free too (XGBoost's tracker uses two ports)."""
    for _ in range(attempts):
        port = free_port(host)
        if _bindable(host, port + 1):
            return port
    return free_port(host)


UNIX_SOCKET_ENV = "SAGESTACK_BIND_TO_UNIX_SOCKET"  # read by the serving toolkit
SOCKET_NAME = "serve.sock"  # in the container's /opt/ml
_MAX_PATH_BYTES = 107  # sun_path holds 108 bytes with the terminating NUL


def serving_environment(port: int, base: PurePosixPath) -> dict[str, str]:
    """What a ``serve`` process listens on: ``port`` on loopback, a spare port of its own, and the unix socket in
    ``base`` (the container's ``/opt/ml``) when its path fits."""
    extra_port = free_port()
    return {
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_BIND_TO_ADDRESS": "127.0.0.1",
        "SAGEMAKER_SAFE_PORT_RANGE": f"{extra_port}-{extra_port}",
        **serving_socket_environment(base),
    }


def serving_socket_environment(base: PurePosixPath) -> dict[str, str]:
    """The variable that asks the server for a unix socket in ``base`` (the container's ``/opt/ml``); none when the
    path would not fit a socket address (the environment isolation mode's long host paths)."""
    path = str(base / SOCKET_NAME)
    return {UNIX_SOCKET_ENV: path} if len(os.fsencode(path)) <= _MAX_PATH_BYTES else {}


class ServingSocket:
    """The socket, held open by descriptor until ``close``; ``connect`` gives a connected, non-blocking socket."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor: int | None = descriptor
        self._lock = threading.Lock()  # a descriptor number is never connected to after it was closed (and reused)

    @classmethod
    def pin(cls, root: Path) -> ServingSocket | None:
        """The socket the server made in ``root`` (its host ``/opt/ml``); None when there is none to trust."""
        try:
            descriptor = os.open(root / SOCKET_NAME, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None  # the server listens on TCP only
        try:
            found, owner = os.fstat(descriptor), os.stat(root).st_uid
        except OSError:
            os.close(descriptor)
            return None
        if not stat.S_ISSOCK(found.st_mode) or found.st_uid != owner:
            logger.warning("a serving container's %s is not its own socket: reached over TCP", SOCKET_NAME)
            os.close(descriptor)
            return None
        return cls(descriptor)

    def connect(self) -> socket.socket:
        """A connection to the server (``OSError`` when it does not take it: closed, gone, or its backlog full)."""
        with self._lock:
            if self._descriptor is None:
                raise ConnectionRefusedError("the serving container has stopped")
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.setblocking(False)
                connection.connect(f"/proc/self/fd/{self._descriptor}")
            except OSError as exc:
                connection.close()
                raise OSError(exc.errno, os.strerror(exc.errno) if exc.errno else str(exc)) from None
            return connection

    def close(self) -> None:
        with self._lock:
            descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)


class ProcessServingContainer:
    """A ``serve`` process listening on ``127.0.0.1:<port>``."""

    def __init__(
        self, name: str, process: HostProcess, port: int, grace_seconds: float, on_stop: Callable[[], None]
    ) -> None:
        self.name = name
        self._process = process
        self._port = port
        self._grace = grace_seconds
        self._on_stop = on_stop
        self.unix_socket: ServingSocket | None = None  # pinned once the server is ready (``pin_unix_socket``)

    def pin_unix_socket(self, root: Path) -> None:
        """Keep the unix socket the ready server made in ``root`` (its host ``/opt/ml``), if it made a trusted one."""
        self.unix_socket = ServingSocket.pin(root)

    def connect_unix(self) -> socket.socket | None:
        """A connection over the server's unix socket; None when it has none (reach it at ``url``)."""
        pinned = self.unix_socket
        return pinned.connect() if pinned is not None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def pid(self) -> int:
        return self._process.pid

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def stop(self, grace_seconds: float | None = None) -> None:
        """SIGTERM the server's process group, SIGKILL after the grace period, and wait until it is gone."""
        self._process.terminate(self._grace if grace_seconds is None else grace_seconds)
        self._process.wait()
        if self.unix_socket is not None:
            self.unix_socket.close()
        self._on_stop()

    def last_lines(self) -> tuple[str, ...]:
        return self._process.last_lines()


def with_port_retries(start: Callable[[], T], taken: type[Exception]) -> T:
    """``start()``, again while it raises ``taken`` (another process holds a port it was given: another stack picked
    the same one a moment earlier), ``PORT_ATTEMPTS`` times in all; ``start`` uses newly picked ports each time."""
    for _ in range(PORT_ATTEMPTS - 1):
        try:
            return start()
        except taken as exc:
            logger.warning("%s: starting it again on another port", str(exc).splitlines()[0])
    return start()


def start_when_healthy(
    launch: Callable[[], tuple[ProcessServingContainer, HostProcess]], timeout_seconds: float
) -> ProcessServingContainer:
    """Launch a server (``launch`` picks a new port each time) and wait until it is healthy, on another port when
    another process took its port. A server that does not become healthy is stopped."""

    def healthy() -> ProcessServingContainer:
        container, process = launch()
        try:
            wait_until_healthy(container, process, timeout_seconds)
        except BaseException:
            container.stop(grace_seconds=0.0)
            raise
        return container

    return with_port_retries(healthy, ServingPortTakenError)


def wait_until_healthy(container: ProcessServingContainer, process: HostProcess, timeout_seconds: float) -> None:
    """Poll ``GET /ping`` until the container's own server answers 200; raise :class:`ServingStartupError` if the
    process exits or time runs out, :class:`ServingPortTakenError` when another process answers on its port."""
    deadline = time.monotonic() + timeout_seconds
    ping_url = f"{container.url}/ping"
    while True:
        if process.wait(0):
            code = process.exit_code if process.exit_code is not None else -1
            raise ServingStartupError(
                f"serving container {container.name} exited before it was ready: {describe_exit(code)}",
                process.last_lines(),
            )
        if _ping(ping_url):
            if listener_owner(container.port, process.pid) is ListenerOwner.OTHER:
                raise ServingPortTakenError(
                    f"serving container {container.name}: another process listens on its port {container.port}",
                    process.last_lines(),
                )
            logger.info("serving container %s ready at %s", container.name, container.url)
            return
        if time.monotonic() >= deadline:
            raise ServingStartupError(
                f"serving container {container.name} did not answer GET /ping with 200 within {timeout_seconds:g} s",
                process.last_lines(),
            )
        process.wait(_PING_INTERVAL_SECONDS)


def _ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=PING_TIMEOUT_SECONDS) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


class ListenerOwner(enum.Enum):
    SESSION = "session"  # a process of the session holds the listening socket
    OTHER = "other"  # sockets listen on the port, none of them the session's
    UNKNOWN = "unknown"  # nothing listens (any more), or ``/proc`` did not tell


_PROC = Path("/proc")


def is_listened_on(port: int) -> bool:
    """Whether some process listens on TCP ``port`` (``/proc/net/tcp*``)."""
    return bool(_listening_inodes(port))


def listener_owner(port: int, session: int) -> ListenerOwner:
    """Whether the TCP socket listening on ``port`` belongs to a process of session ``session`` (a
    ``start_new_session`` child's pid): its inode in ``/proc/net/tcp*`` among the session's open descriptors."""
    listening = _listening_inodes(port)
    if not listening:
        return ListenerOwner.UNKNOWN
    held = _session_socket_inodes(session)
    if held is None:
        return ListenerOwner.UNKNOWN
    return ListenerOwner.SESSION if listening & held else ListenerOwner.OTHER


def _listening_inodes(port: int) -> set[str]:
    suffix, inodes = f":{port:04X}", set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()  # sl local_address rem_address st ... inode (the tenth)
            if len(fields) > 9 and fields[3] == "0A" and fields[1].endswith(suffix):
                inodes.add(fields[9])
    return inodes


def _session_socket_inodes(session: int) -> set[str] | None:
    """Inodes of the sockets the session's processes hold; None when a member's descriptors could not be read."""
    inodes: set[str] = set()
    for pid, fields in live_processes():
        if int(fields[3]) != session:
            continue
        try:
            descriptors = list((_PROC / str(pid) / "fd").iterdir())
        except PermissionError:
            return None
        except OSError:
            continue  # the process ended meanwhile
        for descriptor in descriptors:
            link = _link(descriptor)
            if link.startswith("socket:["):
                inodes.add(link[len("socket:[") : -1])
    return inodes


def _link(descriptor: Path) -> str:
    try:
        return os.readlink(descriptor)
    except OSError:
        return ""  # closed meanwhile (the listing's own descriptor is, always)
