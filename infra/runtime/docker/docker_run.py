"""``docker run`` command lines and post-mortems for the Docker runtime.

A host is one attached ``docker run`` (no TTY, so stdout and stderr stay apart and the CLI forwards SIGTERM to the
container). The image URI is resolved to a local image without ever pulling: the URI itself when the engine has it
(a user's image, or ours tagged with an AWS URI), else ``sagestack/<name>:latest`` for a built-in URI.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infra.runtime.api import ContainerImage, Entry, ImageNotFoundError, LogCallback, LogLine
from infra.runtime.docker.docker_cli import LABEL_MANAGED, DockerCli
from infra.runtime.images import container_name
from infra.runtime.process.host_process import describe_exit

logger = logging.getLogger(__name__)

__all__ = ["ContainerCommand", "LogTail", "PostMortem", "docker_name", "local_image", "post_mortem"]

LABEL_JOB = "org.sagestack.job"
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")
_TAIL_LINES = 20


def docker_name(*parts: str) -> str:
    """A valid, unique container or network name: ``sagestack-<parts>-<random>``."""
    text = _NAME_UNSAFE.sub("-", "-".join(parts)).strip("-.")[:80]
    return f"sagestack-{text}-{secrets.token_hex(3)}"


def local_image(docker: DockerCli, image: ContainerImage) -> str:
    """The local image to run for ``image.uri``; :class:`ImageNotFoundError` (naming the fix) when absent."""
    if docker.inspect("image", image.uri) is not None:
        return image.uri
    name = container_name(image.uri)
    if name is not None:
        ours = f"sagestack/{name.replace('_', '-')}:latest"
        if docker.inspect("image", ours) is not None:
            return ours
        raise ImageNotFoundError(
            f"image {image.uri!r} maps to {ours}, which is not in the local Docker engine: build it with `make images`"
        )
    raise ImageNotFoundError(
        f"image {image.uri!r} is not in the local Docker engine (the Docker runtime never pulls): "
        f"`docker pull` or `docker build -t {image.uri}` it first"
    )


@dataclass(frozen=True)
class ContainerCommand:
    """One ``docker run`` for one host."""

    name: str
    image: str
    host: str
    runtime_id: str
    job: str
    network: str | None = None
    mounts: Mapping[str, Path] = field(default_factory=dict)  # container path -> host path
    environment: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[int, int] = field(default_factory=dict)  # container port -> 127.0.0.1 port
    memory_limit: str | None = None

    def argv(
        self, docker: DockerCli, entry: Entry | None, entrypoint: Sequence[str] | None, arguments: Sequence[str] | None
    ) -> list[str]:
        """``docker run [--entrypoint E] image [args]`` with the override rules of
        docs/reference/container-contract.md#start-and-stop."""
        # --init: Docker's tiny init is PID 1 and forwards SIGTERM, so a container that installs no handler stops at
        # once (as under the process runtime) instead of ignoring it as PID 1 until SIGKILL after the grace period.
        argv = docker.argv("run", "--init", "--name", self.name, "--hostname", self.host)
        argv += ["--label", f"{LABEL_MANAGED}={self.runtime_id}", "--label", f"{LABEL_JOB}={self.job}"]
        if self.network is not None:
            argv += ["--network", self.network, "--network-alias", self.host]
        if os.getuid() != 0:
            argv += ["--user", f"{os.getuid()}:{os.getgid()}"]  # files in the bind mounts stay the caller's
        if self.memory_limit:
            argv += ["--memory", self.memory_limit, "--memory-swap", self.memory_limit]
        for target, source in self.mounts.items():
            argv += ["--mount", f"type=bind,source={source.resolve()},target={target}"]
        for container_port, host_port in self.ports.items():
            argv += ["--publish", f"127.0.0.1:{host_port}:{container_port}"]
        for key, value in self.environment.items():
            argv += ["--env", f"{key}={value}"]
        tail: list[str] = list(arguments) if arguments else ([entry.value] if entry is not None else [])
        if entrypoint:
            argv += ["--entrypoint", entrypoint[0], self.image, *entrypoint[1:], *(arguments or ())]
        else:
            argv += [self.image, *tail]
        return argv


class LogTail:
    """Wraps a log callback and keeps each host's last lines (the ``docker run`` CLI's own errors land there)."""

    def __init__(self, on_log: LogCallback | None) -> None:
        self._on_log = on_log
        self._tails: dict[str, deque[str]] = {}

    def __call__(self, line: LogLine) -> None:
        self._tails.setdefault(line.host, deque(maxlen=_TAIL_LINES)).append(line.text)
        if self._on_log is not None:
            self._on_log(line)

    def lines(self, host: str) -> tuple[str, ...]:
        return tuple(self._tails.get(host, ()))


@dataclass(frozen=True)
class PostMortem:
    """Why a container ended, as far as the engine knows (``None``: nothing better than the exit code)."""

    reason: str | None
    engine_down: bool = False


def post_mortem(docker: DockerCli, name: str, host: str, exit_code: int, tail: Sequence[str]) -> PostMortem:
    """Explain a non-zero exit: engine gone, out-of-memory kill, or ``docker run`` failing to start the container."""
    if not docker.is_available():
        return PostMortem(
            f"AlgorithmError: the Docker engine stopped while {host} was running (exit {exit_code})", True
        )
    state = (docker.inspect("container", name) or {}).get("State") or {}
    if state.get("OOMKilled"):
        return PostMortem(
            f"AlgorithmError: {host} ran out of memory and was killed (OOMKilled, exit code {exit_code}). "
            "Use an instance type with more memory or less data per host."
        )
    detail = " | ".join(line for line in tail if line.strip())[-800:]
    if exit_code == 125:
        return PostMortem(f"AlgorithmError: Docker could not start the container for {host}: {detail}")
    if exit_code in (126, 127):
        what = "was not found" if exit_code == 127 else "could not be invoked"
        return PostMortem(f"AlgorithmError: the container command of {host} {what} (exit {exit_code}): {detail}")
    if state.get("Error"):
        return PostMortem(f"{describe_exit(exit_code)}: {state['Error']}")
    return PostMortem(None)
