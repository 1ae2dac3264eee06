"""Remove containers and networks that could not be removed because the Docker engine was not answering.

When the engine stops mid-job, the job fails at once but ``docker rm -f`` cannot reach the engine. With
``live-restore`` (or a stopped-then-restarted engine) those containers would outlive the job; the reaper keeps their
names and retries in a background thread until the engine answers again, then removes them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from infra.runtime.docker.docker_cli import DockerCli

logger = logging.getLogger(__name__)

__all__ = ["LeftoverReaper"]


class LeftoverReaper:
    """Retries removal every ``interval_seconds`` while something is pending; :meth:`close` ends the thread."""

    def __init__(self, docker: DockerCli, interval_seconds: float = 2.0) -> None:
        self._docker = docker
        self._interval = interval_seconds
        self._lock = threading.Lock()
        self._containers: set[str] = set()
        self._networks: set[str] = set()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def pending(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._containers | self._networks))

    def remove(self, containers: Iterable[str] = (), networks: Iterable[str] = ()) -> bool:
        """Remove now (``True`` when all is gone); whatever the engine cannot remove now is retried later."""
        containers, networks = tuple(containers), tuple(networks)
        removed = self._docker.remove_containers(containers)
        left = [network for network in networks if not (removed and self._docker.remove_network(network))]
        if removed and not left:
            return True
        with self._lock:
            if not removed:
                self._containers.update(containers)
            self._networks.update(left)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sagestack-docker-reaper", daemon=True)
                self._thread.start()
        logger.warning("the Docker engine is not answering: will remove %s when it is back", ", ".join(self.pending()))
        return False

    def close(self) -> None:
        self._closed.set()

    def _loop(self) -> None:
        while not self._closed.wait(self._interval):
            with self._lock:
                containers, networks = tuple(self._containers), tuple(self._networks)
                if not containers and not networks:
                    self._thread = None  # under the lock: ``remove`` starts a new thread from now on
                    return
            if not self._docker.is_available():
                continue
            if self._docker.remove_containers(containers):
                networks_left = {network for network in networks if not self._docker.remove_network(network)}
                with self._lock:
                    self._containers.difference_update(containers)
                    self._networks.difference_update(set(networks) - networks_left)
                logger.info("removed leftovers of a stopped engine: %s", ", ".join((*containers, *networks)))
