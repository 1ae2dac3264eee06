"""The Docker runtime's job networks: one per running job, kept for a later job once its containers are gone.

The hosts of a job share a user-defined network of their own: each container has the hostname and alias
``algo-<i>`` there, and no other job's container is in reach. A relay on the network's gateway lets them reach the
stack (:mod:`infra.runtime.docker.docker_relay`). Creating a network, reading its gateway and removing it again cost
a few hundred milliseconds of engine work per job, so a job *leases* a network from :class:`JobNetworks` and gives it
back when it ends (docs/images.md#job-networks-and-relays):

- a network is held by one job at a time, and given back only after that job's containers were removed;
- given back (on the finished run's own thread), it is checked: only when the engine lists no container attached to
  it does it become idle, with every relay connection of the previous job cut (:meth:`RelaySet.recycle`);
- at most ``keep_idle`` networks are idle (the engine's address pools are shared with everything else on the
  machine); any other is removed, as is a network whose job's containers could not be removed;
- :meth:`JobNetworks.close` removes the idle ones (the runtime's ``shutdown`` also removes anything it labelled).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from infra.runtime.api import ContainerRuntimeError
from infra.runtime.docker.docker_cli import DockerCli
from infra.runtime.docker.docker_reaper import LeftoverReaper
from infra.runtime.docker.docker_relay import RelaySet
from infra.runtime.docker.docker_run import docker_name

logger = logging.getLogger(__name__)

__all__ = ["KEEP_IDLE_NETWORKS", "JobNetwork", "JobNetworks"]

KEEP_IDLE_NETWORKS = 2  # idle job networks kept for later jobs (each holds one of the engine's address ranges)


@dataclass
class JobNetwork:
    """A user-defined network, its gateway (``None`` when it has no IPv4 one) and the relays bound there."""

    name: str
    gateway: str | None
    relays: RelaySet = field(default_factory=RelaySet)


class JobNetworks:
    """Leases job networks labelled ``label``; creates one when none is idle."""

    def __init__(
        self, docker: DockerCli, reaper: LeftoverReaper, label: str, keep_idle: int = KEEP_IDLE_NETWORKS
    ) -> None:
        self._docker = docker
        self._reaper = reaper
        self._label = label
        self._keep_idle = keep_idle
        self._lock = threading.Lock()
        self._idle: list[JobNetwork] = []
        self._closed = False

    def idle(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(network.name for network in self._idle)

    def lease(self) -> JobNetwork:
        """An idle network (no container attached, no relay connection open), else a new one."""
        with self._lock:
            if self._idle:
                network = self._idle.pop()
                logger.debug("reusing job network %s", network.name)
                return network
        return self._create()

    def give_back(self, network: JobNetwork, containers_removed: bool) -> None:
        """A job has ended; ``containers_removed`` says the engine removed every container it started.

        Asks the engine (a ``docker network inspect``): call it off the caller's path, as the run's own thread does.
        """
        if not containers_removed:
            self._discard(network)
            return
        network.relays.recycle()
        self._check_in(network)

    def close(self) -> None:
        """Remove the idle networks; a network given back from now on is removed."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for network in idle:
            self._discard(network)

    def _create(self) -> JobNetwork:
        name = docker_name("net")
        self._docker.run("network", "create", "--label", self._label, name)
        try:
            gateway = self._docker.network_gateway(name)
        except BaseException:
            self._reaper.remove((), (name,))
            raise
        logger.debug("created job network %s (gateway %s)", name, gateway)
        return JobNetwork(name, gateway)

    def _check_in(self, network: JobNetwork) -> None:
        try:
            attached = self._docker.network_containers(network.name)
        except ContainerRuntimeError as exc:
            logger.debug("cannot check job network %s: %s", network.name, exc)
            attached = None
        with self._lock:
            keep = attached == () and not self._closed and len(self._idle) < self._keep_idle
            if keep:
                self._idle.append(network)
        if not keep:
            if attached:
                logger.warning("job network %s still has containers attached: removing it", network.name)
            self._discard(network)

    def _discard(self, network: JobNetwork) -> None:
        network.relays.close()
        self._reaper.remove((), (network.name,))
