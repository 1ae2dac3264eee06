"""Make sure a Docker engine answers: ``python -m infra.images engine`` (the first step of ``make test-docker``).

In order: an engine that already answers; else start ``dockerd`` if it is installed; else, as root with apt, install
``docker.io docker-compose debootstrap`` and start it. Exit status 0 when an engine answers, 3 when none can be had
here (``make test-docker`` then skips the Docker tier with that message).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from infra.runtime.docker.docker_cli import DockerCli

logger = logging.getLogger(__name__)

__all__ = ["NoEngineError", "ensure_engine"]

APT_PACKAGES = ("docker.io", "docker-compose", "debootstrap")
START_WAIT_SECONDS = 60.0


class NoEngineError(RuntimeError):
    """No Docker engine answers and none could be installed or started."""


def ensure_engine(docker: DockerCli, log_file: Path, install: bool = True) -> str:
    """Return how the engine was found (``running``, ``started``, ``installed``); raise :class:`NoEngineError`."""
    if docker.is_available():
        return "running"
    how = "started"
    if shutil.which("dockerd") is None:
        if not install:
            raise NoEngineError("no Docker engine answers and dockerd is not installed")
        _install()
        how = "installed"
    _start_dockerd(log_file)
    deadline = time.monotonic() + START_WAIT_SECONDS
    while not docker.is_available():
        if time.monotonic() > deadline:
            raise NoEngineError(f"dockerd did not answer within {START_WAIT_SECONDS:g} s (see {log_file})")
        time.sleep(1.0)
    logger.info("Docker engine %s", how)
    return how


def _install() -> None:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise NoEngineError("no Docker engine here, and it cannot be installed (needs root and apt-get)")
    logger.info("installing %s with apt-get", " ".join(APT_PACKAGES))
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES]):
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        )
        if done.returncode != 0:
            raise NoEngineError(f"`{' '.join(argv)}` failed: {done.stderr.strip()[-500:]}")
    if shutil.which("dockerd") is None:
        raise NoEngineError("apt-get installed docker.io but dockerd is not on PATH")


def _start_dockerd(log_file: Path) -> None:
    """Start ``dockerd`` in its own session, so it outlives this command (and ``make``)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logger.info("starting dockerd (log: %s)", log_file)
    with log_file.open("ab") as log:
        subprocess.Popen(  # detached on purpose: the engine outlives this command
            ["dockerd"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
