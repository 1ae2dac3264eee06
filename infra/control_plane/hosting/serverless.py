"""Serverless variants (docs/deploy.md#serverless-inference): validation, cold start, concurrency and memory bounds.

A ``ServerlessConfig`` variant starts no container when the endpoint is created: the first request starts one (the
cold start), and an instance idle for ``idle_seconds`` is stopped (the next request cold-starts again, as on AWS);
``MaxConcurrency`` bounds the requests in flight (one more is refused
with ``ThrottlingException``, which the SDKs retry); ``MemorySizeInMB`` bounds the container's resident memory (the
supervisor stops a container over it, and the next request starts it again).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, TypeVar

from infra.control_plane.core.errors import ThrottlingException, ValidationException
from infra.control_plane.hosting.hosting_requests import ProductionVariant, ServerlessConfig

logger = logging.getLogger(__name__)

__all__ = ["MEMORY_SIZES_MB", "ServerlessCapacity", "check_serverless_variant", "resident_memory_mb"]

MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)  # AWS accepts these values only
T = TypeVar("T")


def check_serverless_variant(variant: ProductionVariant) -> None:
    """AWS's checks on a variant with ``ServerlessConfig`` (ranges are botocore's, checked at the edge)."""
    config = variant.serverless_config
    if config is None:
        return
    name = variant.variant_name
    if variant.instance_type or variant.initial_instance_count:
        raise ValidationException(
            f"Production variant {name} specifies ServerlessConfig: InstanceType and InitialInstanceCount must not "
            "be specified."
        )
    if config.memory_size_in_mb is None or config.max_concurrency is None:
        raise ValidationException(f"ServerlessConfig of variant {name} requires MemorySizeInMB and MaxConcurrency.")
    if config.memory_size_in_mb not in MEMORY_SIZES_MB:
        sizes = ", ".join(str(size) for size in MEMORY_SIZES_MB)
        raise ValidationException(
            f"Value {config.memory_size_in_mb} for MemorySizeInMB of variant {name} is not valid: use one of {sizes}."
        )
    provisioned = config.provisioned_concurrency
    if provisioned is not None and provisioned > config.max_concurrency:
        raise ValidationException(
            f"ProvisionedConcurrency ({provisioned}) of variant {name} must not exceed MaxConcurrency "
            f"({config.max_concurrency})."
        )


class ServerlessCapacity(Generic[T]):
    """One serverless variant's instance, started on first use and released when idle, and the bound on requests
    in flight."""

    def __init__(
        self, config: ServerlessConfig, start: Callable[[], T], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.memory_mb = int(config.memory_size_in_mb or MEMORY_SIZES_MB[0])
        self.max_concurrency = int(config.max_concurrency or 1)
        self._start = start
        self._clock = clock
        self._lock = threading.Lock()  # the instance, the count in flight (held across a cold start)
        self._in_flight = 0
        self._last_used = clock()
        self.instance: T | None = None
        self.cold_starts = 0

    @contextmanager
    def admitted(self, endpoint: str) -> Iterator[None]:
        with self._lock:
            if self._in_flight >= self.max_concurrency:
                raise ThrottlingException(
                    f"Endpoint {endpoint} is at its MaxConcurrency of {self.max_concurrency} requests: rate exceeded."
                )
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last_used = self._clock()

    def started(self) -> T:
        """The running instance; the first call (and the first after an idle release) starts it: a cold start."""
        with self._lock:
            if self.instance is None:
                logger.info("serverless variant: cold start")
                self.instance = self._start()
                self.cold_starts += 1
            return self.instance

    def release_idle(self, idle_seconds: float) -> T | None:
        """The instance, taken away when nothing was in flight for ``idle_seconds`` (the caller stops it); the next
        request cold-starts a new one, as AWS's serverless endpoints do after idle."""
        with self._lock:
            idle = self._in_flight == 0 and self._clock() - self._last_used >= idle_seconds
            if self.instance is None or not idle:
                return None
            released, self.instance = self.instance, None
            return released


def resident_memory_mb(process_group: int) -> float:
    """The resident memory of every process in ``process_group`` (a serving container's processes), in MiB."""
    total_kib = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != process_group:
                continue
            status = (entry / "status").read_text()
        except (OSError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
                break
    return total_kib / 1024
