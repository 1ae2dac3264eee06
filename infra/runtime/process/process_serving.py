"""A started ``serve`` process and its readiness check (docs/reference/container-contract.md#serving)."""

from __future__ import annotations

import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from infra.runtime.errors import ServingStartupError
from infra.runtime.process.host_process import HostProcess, describe_exit

logger = logging.getLogger(__name__)

__all__ = ["ProcessServingContainer", "free_port", "wait_until_healthy"]

PING_TIMEOUT_SECONDS = 2.0  # each GET /ping try (docs/reference/container-contract.md#http-server)
_PING_INTERVAL_SECONDS = 0.1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the kernel just reported free on ``host`` (it can be taken again before use; rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_pair(host: str = "127.0.0.1", attempts: int = 20) -> int:
    """A free port ``p`` whose neighbour ``p + 1`` is free too (XGBoost's tracker uses two ports)."""
    for _ in range(attempts):
        port = free_port(host)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port + 1))
            except OSError:
                continue
        return port
    return free_port(host)


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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def pid(self) -> int:
        return self._process.pid

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def stop(self, grace_seconds: float | None = None) -> None:
        """SIGTERM the server's process group, SIGKILL after the grace period, and wait until it is gone."""
        self._process.terminate(self._grace if grace_seconds is None else grace_seconds)
        self._process.wait()
        self._on_stop()

    def last_lines(self) -> tuple[str, ...]:
        return self._process.last_lines()


def wait_until_healthy(container: ProcessServingContainer, process: HostProcess, timeout_seconds: float) -> None:
    """Poll ``GET /ping`` until 200; raise :class:`ServingStartupError` if the process exits or time runs out."""
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
