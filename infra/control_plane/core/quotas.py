"""The stack's service quotas, checked on the typed Create requests (docs/security.md#quotas).

One :class:`QuotaLedger` serves one account/region, as AWS's quotas do. Each family registers how many instances
its live resources use (a callable read at check time, so nothing has to be released when a job ends), and its
Create handler asks the ledger before it stores the new resource. A request over a quota gets AWS's
``ResourceLimitExceeded`` in AWS's wording, naming the setting that changes the quota.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

from infra.config import ServiceQuotas
from infra.control_plane.core.errors import ResourceLimitExceeded

__all__ = ["JOB_KINDS", "QuotaLedger"]

JOB_KINDS = ("training", "processing", "transform")
ENDPOINTS = "endpoint"

# Quota -> the environment variable that changes it.
_SETTINGS = {
    "instances_per_job": "SAGESTACK_MAX_INSTANCES_PER_JOB",
    "concurrent_jobs": "SAGESTACK_MAX_CONCURRENT_JOBS",
    "running_instances": "SAGESTACK_MAX_RUNNING_INSTANCES",
    "endpoints": "SAGESTACK_MAX_ENDPOINTS",
}


class QuotaLedger:
    """Checks new jobs and endpoints against :class:`~infra.config.ServiceQuotas`."""

    def __init__(self, quotas: ServiceQuotas | None = None) -> None:
        self.quotas = quotas or ServiceQuotas()
        self._lock = threading.Lock()
        self._live: dict[str, Callable[[], Iterable[int]]] = {}

    def register(self, kind: str, live_instances: Callable[[], Iterable[int]]) -> None:
        """``live_instances()`` gives the instance count of each live resource of ``kind`` (a job in progress,
        an endpoint that exists)."""
        self._live[kind] = live_instances

    def check_instance_count(self, what: str, count: int) -> None:
        """One job's (or one endpoint variant's) instance count."""
        _check("instances_per_job", f"Number of instances per {what}", self.quotas.instances_per_job, 0, count)

    def check_job(self, kind: str, instance_count: int) -> None:
        """A new job of ``kind`` (training, processing, transform) with ``instance_count`` instances."""
        self.check_instance_count(f"{kind} job", instance_count)
        with self._lock:
            jobs = list(self._instances(kind))
            _check("concurrent_jobs", f"Number of concurrent {kind} jobs", self.quotas.concurrent_jobs, len(jobs), 1)
            self._check_running(instance_count)

    def check_endpoint(self, variant_counts: Sequence[int], new_endpoint: bool, replaced: int = 0) -> None:
        """An endpoint created (``new_endpoint``) or updated to variants of ``variant_counts`` instances;
        ``replaced``: the instances of the deployment an update replaces (they stop once the new one runs)."""
        for count in variant_counts:
            self.check_instance_count("endpoint variant", count)
        with self._lock:
            if new_endpoint:
                existing = len(list(self._instances(ENDPOINTS)))
                _check("endpoints", "Number of endpoints", self.quotas.endpoints, existing, 1)
            self._check_running(sum(variant_counts), freed=replaced)

    def check_running_instances(self, count: int) -> None:
        """``count`` more instances at once (e.g. a tuning job's parallel training jobs)."""
        with self._lock:
            self._check_running(count)

    def _check_running(self, count: int, freed: int = 0) -> None:
        used = sum(sum(self._instances(kind)) for kind in self._live) - freed
        limit = self.quotas.running_instances
        _check("running_instances", "Number of instances across running jobs and endpoints", limit, used, count)

    def _instances(self, kind: str) -> Iterable[int]:
        live = self._live.get(kind)
        return live() if live is not None else ()


def _check(quota: str, title: str, limit: int, used: int, delta: int) -> None:
    if used + delta > limit:
        raise ResourceLimitExceeded(
            f"The account-level service limit '{title}' is {limit}, with current utilization of {max(used, 0)} and "
            f"a request delta of {delta}. The local stack sizes this quota to the machine; set {_SETTINGS[quota]} "
            "to change it (docs/security.md#quotas)."
        )
