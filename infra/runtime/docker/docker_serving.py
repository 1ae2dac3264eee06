"""A ``serve`` container with port 8080 published on ``127.0.0.1`` (:class:`~infra.runtime.api.ServingContainer`)."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING

from infra.runtime.api import Entry, LogCallback, ServingSpec
from infra.runtime.docker.docker_run import LogTail, post_mortem
from infra.runtime.errors import ServingStartupError
from infra.runtime.process.host_process import HostProcess, describe_exit
from infra.runtime.process.layout import CONTAINER_ROOT, lay_out_serving
from infra.runtime.process.process_serving import free_port

if TYPE_CHECKING:
    from infra.runtime.docker.docker_runtime import DockerRuntime

logger = logging.getLogger(__name__)

__all__ = ["DockerServingContainer"]

CONTAINER_PORT = 8080
# GET /ping every 20 ms at first, backing off to every 200 ms: a container that is up quickly is seen at once
_PING_FIRST_INTERVAL_SECONDS = 0.02
_PING_MAX_INTERVAL_SECONDS = 0.2
_PORT_TAKEN = ("port is already allocated", "address already in use")


class DockerServingContainer:
    """A running ``docker run <image> serve``; ``stop`` is ``docker stop -t <grace>`` then ``docker rm -f``."""

    def __init__(self, runtime: DockerRuntime, name: str, process: HostProcess, port: int, grace: float) -> None:
        self._runtime = runtime
        self.name = name
        self._process = process
        self._port = port
        self._grace = grace

    @classmethod
    def start(
        cls,
        runtime: DockerRuntime,
        spec: ServingSpec,
        image: str,
        environment: Mapping[str, str],
        on_log: LogCallback | None,
        host_port: int | None,
        grace: float,
    ) -> DockerServingContainer:
        layout = lay_out_serving(spec)
        port = host_port if host_port is not None else free_port()
        mounts = {str(CONTAINER_ROOT): layout.root, **layout.binds}
        command = runtime.command(
            "algo-1", spec.name, image, mounts=mounts, environment=environment, ports={CONTAINER_PORT: port}
        )
        tail = LogTail(on_log)
        argv = command.argv(runtime.docker, Entry.SERVE, None, None)
        try:
            process = HostProcess("algo-1", argv, runtime.docker.client_environment(), layout.root, tail)
        except OSError as exc:
            raise ServingStartupError(f"cannot start serving container {spec.name}: {exc}") from exc
        container = cls(runtime, command.name, process, port, grace)
        try:
            container._wait_until_healthy(spec.startup_timeout_seconds, tail)
        except BaseException:
            container.stop(grace_seconds=0.0)
            raise
        return container

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def connect_unix(self) -> None:
        """None: a Docker container is reached over TCP, at ``url``."""
        return None

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def stop(self, grace_seconds: float | None = None) -> None:
        grace = self._grace if grace_seconds is None else grace_seconds
        docker = self._runtime.docker
        docker.run("stop", "-t", str(int(grace)), self.name, check=False, timeout=grace + 30.0)
        self._process.terminate(5.0)  # the CLI exits once the container has; this only covers a hung client
        self._process.wait(10.0)
        self._runtime.reaper.remove((self.name,))
        logger.info("serving container %s stopped", self.name)

    def _wait_until_healthy(self, timeout_seconds: float, tail: LogTail) -> None:
        deadline = time.monotonic() + timeout_seconds
        interval = _PING_FIRST_INTERVAL_SECONDS
        while True:
            if self._process.wait(0):
                raise ServingStartupError(self._exit_reason(tail), tail.lines("algo-1"))
            if _ping(f"{self.url}/ping"):
                logger.info("serving container %s ready at %s", self.name, self.url)
                return
            if time.monotonic() >= deadline:
                raise ServingStartupError(
                    f"serving container {self.name} did not answer GET /ping with 200 within {timeout_seconds:g} s",
                    tail.lines("algo-1"),
                )
            self._process.wait(interval)
            interval = min(interval * 2, _PING_MAX_INTERVAL_SECONDS)

    def _exit_reason(self, tail: LogTail) -> str:
        code = self._process.exit_code if self._process.exit_code is not None else -1
        lines = tail.lines("algo-1")
        if any(marker in line.lower() for line in lines for marker in _PORT_TAKEN):
            return f"serving container {self.name} could not publish port 127.0.0.1:{self._port}: already in use"
        found = post_mortem(self._runtime.docker, self.name, "algo-1", code, lines)
        return f"serving container {self.name} exited before it was ready: {found.reason or describe_exit(code)}"


def _ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
