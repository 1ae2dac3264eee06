"""The supervision of a running endpoint deployment: dead serving containers restarted (a FailureReason after
``max_failed_restarts`` in a row), idle serverless containers released and those over their memory size stopped
(docs/local-stack.md#faults)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.hosting.serverless import ServerlessCapacity, resident_memory_mb
from infra.control_plane.hosting.serving_chain import ServingProcess, connection_pool
from infra.runtime.api import ContainerRuntimeError, LogLine

if TYPE_CHECKING:
    from infra.control_plane.hosting.endpoint_deployer import Deployment, HostingContext, Instance, Variant

logger = logging.getLogger(__name__)

__all__ = ["EndpointSupervisor"]


class EndpointSupervisor:
    """Restarts a deployment's serving containers that died, until the deployment is stopped; stops a serverless
    container over its memory size (the next check restarts it)."""

    _MEMORY_CHECK_EVERY = 10  # checks: reading every process's memory is dearer than asking whether one is alive

    def __init__(self, context: HostingContext, deployment: Deployment) -> None:
        self._ctx = context
        self._deployment = deployment
        self._ticks = 0

    def start(self) -> None:
        threading.Thread(target=self._watch, name="sagestack-endpoint-supervisor", daemon=True).start()

    def _watch(self) -> None:
        deployment = self._deployment
        while not deployment.stopped.is_set():
            deployment.dead_seen.wait(self._ctx.restart_check_seconds)
            deployment.dead_seen.clear()
            self._ticks += 1
            for variant in self._deployment.variants:
                if variant.serverless is not None and self._ticks % self._MEMORY_CHECK_EVERY == 0:
                    self._check_serverless(variant, variant.serverless)
                for instance in list(variant.instances):
                    for process in instance.processes:
                        if not process.container.is_alive() and not self._deployment.stopped.is_set():
                            reason = self._restart(variant, instance, process)
                            if reason is not None:
                                self._lose(reason)
                                return

    def _check_serverless(self, variant: Variant, capacity: ServerlessCapacity[Instance]) -> None:
        idle = capacity.release_idle(self._ctx.serverless_idle_seconds)
        if idle is not None:
            logger.info("serverless variant %s idle: stopping %s", variant.name, idle.instance_id)
            with self._deployment.lock:
                variant.instances.remove(idle)
            idle.stop()
        for instance in list(variant.instances):
            _stop_over_memory(capacity.memory_mb, instance)

    def _restart(self, variant: Variant, instance: Instance, process: ServingProcess) -> str | None:
        """Restart a dead container; a FailureReason once it failed ``max_failed_restarts`` times in a row."""
        if process.spec is None or self._deployment.stopped.is_set():
            return None
        logger.warning("serving container %s died; restarting it", process.spec.name)
        try:
            container = self._ctx.containers.runtime.start_serving(process.spec, process.on_log)
        except ContainerRuntimeError as exc:
            if self._deployment.stopped.is_set():  # the stack is stopping: the runtime refuses new containers
                return None
            process.failed_restarts += 1
            logger.warning("restarting %s failed (%d in a row): %s", process.spec.name, process.failed_restarts, exc)
            if process.failed_restarts < self._ctx.max_failed_restarts:
                return None
            return (
                f"The serving container of variant {variant.name} ({instance.instance_id}) stopped and could not be "
                f"restarted after {process.failed_restarts} attempts: {exc}"
            )
        with self._deployment.lock:
            stopped = self._deployment.stopped.is_set()
            if not stopped:
                old_pool = process.pool
                process.container, process.pool = container, connection_pool(container.url)
                process.restarts += 1
                process.failed_restarts = 0
        if stopped:  # stopped while this one started: Deployment.stop did not see it
            container.stop()
            return None
        variant.notify_replaced()
        old_pool.close()
        return None

    def _lose(self, reason: str) -> None:
        logger.error("deployment %s lost: %s", self._deployment.config_name, reason)
        if self._deployment.on_lost is not None:
            self._deployment.on_lost(reason)
        else:
            self._deployment.stop()


def _stop_over_memory(limit_mb: int, instance: Instance) -> None:
    """Stop a container whose processes hold more than ``limit_mb`` (process runtime: its pid is its group)."""
    for process in instance.processes:
        pid = getattr(process.container, "pid", None)
        if not isinstance(pid, int) or not process.container.is_alive():
            continue
        used = resident_memory_mb(pid)
        if used > limit_mb:
            message = f"The container used {used:.0f} MB, over the MemorySizeInMB of {limit_mb}: stopped."
            logger.warning("serverless %s: %s", instance.instance_id, message)
            if process.on_log is not None:
                process.on_log(LogLine(process.hostname, "stderr", message, utcnow()))
            process.container.stop()
