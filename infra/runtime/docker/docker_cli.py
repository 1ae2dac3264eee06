"""A thin, typed wrapper over the ``docker`` command line (the one place that runs it).

Decision: Sagestack drives Docker through its CLI rather than the ``docker`` Python package. ``docker run`` attached
to pipes gives the container's stdout/stderr, its exit code and signal forwarding for free (so the process
runtime's supervision code is reused), the CLI negotiates the API version with any engine, and what we run is what
a user can paste into a shell. Every call has a timeout; an unreachable engine raises
:class:`DockerUnavailableError`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.runtime.api import ContainerRuntimeError

logger = logging.getLogger(__name__)

__all__ = ["LABEL_MANAGED", "DockerCli", "DockerCommandError", "DockerUnavailableError"]

LABEL_MANAGED = "org.sagestack.managed"  # on every container the Docker runtime starts
_ENGINE_DOWN = ("cannot connect to the docker daemon", "is the docker daemon running", "connection refused")


class DockerUnavailableError(ContainerRuntimeError):
    """No ``docker`` binary, or the engine does not answer."""


class DockerCommandError(ContainerRuntimeError):
    """A ``docker`` command exited non-zero."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"`docker {' '.join(argv)}` failed with exit code {returncode}: {stderr.strip()[-2000:]}")
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class DockerCli:
    """Runs ``docker`` commands; ``binary`` is the CLI to use (``docker`` on PATH by default)."""

    binary: str = "docker"
    timeout_seconds: float = 60.0
    host: str | None = None  # DOCKER_HOST for every command; None keeps the caller's (or the CLI's default)

    def executable(self) -> str:
        found = shutil.which(self.binary)
        if found is None:
            raise DockerUnavailableError(f"the Docker CLI {self.binary!r} is not installed (not found on PATH)")
        return found

    def argv(self, *args: str) -> list[str]:
        return [self.executable(), *args]

    def client_environment(self) -> dict[str, str]:
        """The environment of a ``docker run`` client: the caller's, with this CLI's ``DOCKER_HOST``."""
        return self._host_environment() or dict(os.environ)

    def environment(self) -> dict[str, str]:
        """The CLI's environment for builds: the legacy builder when ``buildx`` is missing (CLI ≥ 23 refuses to
        build then)."""
        env = self.client_environment()
        if "DOCKER_BUILDKIT" not in env and not self.has_buildx():
            env["DOCKER_BUILDKIT"] = "0"
        return env

    def _host_environment(self) -> dict[str, str] | None:
        return {**os.environ, "DOCKER_HOST": self.host} if self.host else None

    def has_buildx(self) -> bool:
        try:
            argv, env = self.argv("buildx", "version"), self._host_environment()
            done = subprocess.run(argv, capture_output=True, timeout=10, check=False, env=env)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def run(
        self, *args: str, timeout: float | None = None, check: bool = True, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker <args>`` and capture its output; raise typed errors for a down engine or a failure."""
        argv = self.argv(*args)
        logger.debug("docker %s", " ".join(args))
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.timeout_seconds if timeout is None else timeout,
                check=False,
                env=dict(env) if env is not None else self._host_environment(),
            )
        except subprocess.TimeoutExpired as exc:
            raise DockerUnavailableError(f"`docker {' '.join(args)}` did not answer within {exc.timeout:g} s") from exc
        if done.returncode != 0 and check:
            if engine_down(done.stderr):
                raise DockerUnavailableError(f"the Docker engine is not reachable: {done.stderr.strip()}")
            raise DockerCommandError(args, done.returncode, done.stderr)
        return done

    def is_available(self) -> bool:
        """Whether ``docker info`` answers (the engine runs and we may talk to it)."""
        try:
            self.run("info", "--format", "{{.ServerVersion}}", timeout=15)
        except ContainerRuntimeError:
            return False
        return True

    def inspect(self, kind: str, ref: str) -> dict[str, Any] | None:
        """``docker <kind> inspect <ref>`` as a dict, or ``None`` when there is no such object."""
        done = self.run(kind, "inspect", ref, check=False)
        if done.returncode != 0:
            if engine_down(done.stderr):
                raise DockerUnavailableError(f"the Docker engine is not reachable: {done.stderr.strip()}")
            return None
        loaded = json.loads(done.stdout or "[]")
        return loaded[0] if loaded else None

    def image_label(self, ref: str, label: str) -> str | None:
        """A label of a local image, or ``None`` when the image or the label is missing."""
        info = self.inspect("image", ref)
        if info is None:
            return None
        labels = (info.get("Config") or {}).get("Labels") or {}
        value = labels.get(label)
        return str(value) if value is not None else None

    def network_gateway(self, network: str) -> str | None:
        """The IPv4 gateway of a network (the host's address on its bridge), ``None`` when it has none."""
        info = self.inspect("network", network) or {}
        for pool in (info.get("IPAM") or {}).get("Config") or []:
            gateway = str(pool.get("Gateway") or "")
            if gateway and ":" not in gateway:
                return gateway
        return None

    def network_containers(self, network: str) -> tuple[str, ...] | None:
        """The containers attached to a network, ``None`` when there is no such network."""
        info = self.inspect("network", network)
        if info is None:
            return None
        return tuple(sorted((info.get("Containers") or {}).keys()))

    def remove_containers(self, names: Sequence[str]) -> bool:
        """``docker rm -f`` (never raises: used on cleanup paths); ``False`` when the engine did not answer."""
        if not names:
            return True
        return self._remove(("rm", "-f", *names), f"containers {', '.join(names)}", 60.0)

    def remove_network(self, name: str) -> bool:
        """``docker network rm`` (never raises); ``False`` when the engine did not answer."""
        return self._remove(("network", "rm", name), f"network {name}", 30.0)

    def _remove(self, args: Sequence[str], what: str, timeout: float) -> bool:
        try:
            done = self.run(*args, check=False, timeout=timeout)
        except ContainerRuntimeError as exc:
            logger.warning("could not remove %s: %s", what, exc)
            return False
        if done.returncode != 0 and engine_down(done.stderr):
            logger.warning("could not remove %s: the Docker engine is not reachable", what)
            return False
        return True


def engine_down(stderr: str) -> bool:
    text = stderr.lower()
    return any(marker in text for marker in _ENGINE_DOWN)
