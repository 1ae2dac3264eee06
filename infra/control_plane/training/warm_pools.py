"""SageMaker managed warm pools for training jobs (docs/performance.md#warm-pools).

A job with ``ResourceConfig.KeepAlivePeriodInSeconds > 0`` runs in a warm pool: ``InUse`` while it runs; when it
completes, its hosts stay ``Available`` for the keep-alive period (the process runtime keeps pre-started,
pre-imported host processes for it); a later job with a keep-alive period and the same role, instance type, count,
volume size and KMS key and VPC settings takes the pool over (the first job's pool becomes ``Reused``, with
``ReusedByJob``) and starts on those hosts; an expired pool, one set to 0 by ``UpdateTrainingJob``, or one whose
job did not complete is ``Terminated``. ``ResourceRetainedBillableTimeInSeconds`` counts the seconds a pool was kept
``Available``. A restarted stack keeps no process: pools that were available end ``Terminated``.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.training.training_request import CreateTrainingJobRequest

logger = logging.getLogger(__name__)

MAX_KEEP_ALIVE_SECONDS = 3600  # AWS's limit for KeepAlivePeriodInSeconds


class WarmPoolStatusValue(str, enum.Enum):
    AVAILABLE = "Available"
    TERMINATED = "Terminated"
    REUSED = "Reused"
    IN_USE = "InUse"


@dataclass
class WarmPool:
    """One job's view of the warm pool it ran in (``WarmPoolStatus`` of DescribeTrainingJob)."""

    pool_id: str  # the runtime's name for the hosts; passed from job to job as the pool is reused
    keep_alive_seconds: int
    status: WarmPoolStatusValue = WarmPoolStatusValue.IN_USE
    available_since: datetime | None = None
    retained_seconds: int | None = None
    reused_by_job: str | None = None

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {"Status": self.status}
        if self.retained_seconds is not None:
            body["ResourceRetainedBillableTimeInSeconds"] = self.retained_seconds
        if self.reused_by_job:
            body["ReusedByJob"] = self.reused_by_job
        return body


class PooledJob(Protocol):
    name: str
    request: CreateTrainingJobRequest
    warm_pool: WarmPool | None
    lock: threading.RLock

    @property
    def is_terminal(self) -> bool: ...


def matching_key(request: CreateTrainingJobRequest, params: Any) -> tuple[Any, ...]:
    """What a reusing job must share with the pool's job (AWS's matching rules for warm pools)."""
    resources = request.resource_config
    vpc = params.get("VpcConfig") or {}
    return (
        request.role_arn,
        resources.instance_type,
        resources.instance_count,
        resources.volume_size_in_gb,
        resources.volume_kms_key_id,
        tuple(sorted(vpc.get("Subnets") or ())),
        tuple(sorted(vpc.get("SecurityGroupIds") or ())),
    )


def check_keep_alive(seconds: int | None) -> None:
    if seconds is not None and not 0 <= seconds <= MAX_KEEP_ALIVE_SECONDS:
        raise ValidationException(
            f"1 validation error detected: Value '{seconds}' at 'resourceConfig.keepAlivePeriodInSeconds' failed to "
            f"satisfy constraint: Member must have value between 0 and {MAX_KEEP_ALIVE_SECONDS}"
        )


class WarmPools:
    """The warm pools of one account/region's training jobs; ``release`` ends the runtime's hosts of a pool."""

    def __init__(
        self, jobs: Callable[[], Iterable[Any]], release: Callable[[str], None], changed: Callable[[str], None]
    ) -> None:
        self._jobs = jobs
        self._release = release
        self._changed = changed
        self._lock = threading.Lock()
        self._timers: dict[str, threading.Timer] = {}

    def assign(self, job: Any) -> None:
        """At Create: a job asking for a keep-alive period takes over a matching available pool, or opens one."""
        seconds = job.request.resource_config.keep_alive_period_in_seconds or 0
        if seconds <= 0:
            return
        key = matching_key(job.request, job.params)
        with self._lock:
            donor = self._available_match(key)
            if donor is None:
                job.warm_pool = WarmPool(pool_id=job.name, keep_alive_seconds=seconds)
                return
            self._cancel_timer(donor.name)
            with donor.lock:
                assert donor.warm_pool is not None
                pool = donor.warm_pool
                pool.status = WarmPoolStatusValue.REUSED
                pool.reused_by_job = job.name
                pool.retained_seconds = _seconds_since(pool.available_since)
            job.warm_pool = WarmPool(pool_id=pool.pool_id, keep_alive_seconds=seconds)
        self._changed(donor.name)
        logger.info("training job %s reuses the warm pool of %s", job.name, donor.name)

    def job_ended(self, job: Any, completed: bool) -> None:
        """A pool's job ended: its hosts stay available for the keep-alive period, or the pool ends."""
        pool: WarmPool | None = job.warm_pool
        if pool is None:
            return
        with job.lock:
            if not completed:
                pool.status, pool.retained_seconds = WarmPoolStatusValue.TERMINATED, 0
            else:
                pool.status, pool.available_since = WarmPoolStatusValue.AVAILABLE, utcnow()
        if completed:
            self._schedule_expiry(job, pool.keep_alive_seconds)
        else:
            self._release(pool.pool_id)

    def update_keep_alive(self, job: Any, seconds: int) -> None:
        """UpdateTrainingJob's ``ResourceConfig.KeepAlivePeriodInSeconds``: a new period from now, 0 ends the pool."""
        check_keep_alive(seconds)
        pool: WarmPool | None = job.warm_pool
        if pool is None or pool.status not in (WarmPoolStatusValue.AVAILABLE, WarmPoolStatusValue.IN_USE):
            raise ValidationException(
                f"The training job {job.name} has no warm pool that is Available or InUse to update."
            )
        with job.lock:
            pool.keep_alive_seconds = seconds
        if pool.status is WarmPoolStatusValue.AVAILABLE:
            self._schedule_expiry(job, seconds - _seconds_since(pool.available_since) if seconds else 0)

    def terminate_after_restart(self, jobs: Iterable[Any]) -> None:
        """The stack restarted: no host was kept, so pools that were available or in use end terminated."""
        for job in jobs:
            pool = job.warm_pool
            if pool is not None and pool.status in (WarmPoolStatusValue.AVAILABLE, WarmPoolStatusValue.IN_USE):
                pool.retained_seconds = _seconds_since(pool.available_since) if pool.available_since else 0
                pool.status = WarmPoolStatusValue.TERMINATED

    def close(self) -> None:
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()

    def _available_match(self, key: tuple[Any, ...]) -> Any:
        candidates = [
            job
            for job in self._jobs()
            if job.warm_pool is not None
            and job.warm_pool.status is WarmPoolStatusValue.AVAILABLE
            and matching_key(job.request, job.params) == key
        ]
        return min(candidates, key=lambda job: job.warm_pool.available_since, default=None)

    def _schedule_expiry(self, job: Any, seconds: float) -> None:
        timer = threading.Timer(max(0.0, seconds), self._expire, args=(job,))
        timer.daemon = True
        with self._lock:
            self._cancel_timer(job.name)
            self._timers[job.name] = timer
        timer.start()

    def _expire(self, job: Any) -> None:
        with self._lock:
            self._timers.pop(job.name, None)
            pool: WarmPool = job.warm_pool
            if pool.status is not WarmPoolStatusValue.AVAILABLE:
                return
            with job.lock:
                pool.status = WarmPoolStatusValue.TERMINATED
                pool.retained_seconds = _seconds_since(pool.available_since)
        self._changed(job.name)
        logger.info("warm pool of training job %s expired", job.name)
        self._release(pool.pool_id)

    def _cancel_timer(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()


def _seconds_since(moment: datetime | None) -> int:
    return 0 if moment is None else max(0, int((utcnow() - moment).total_seconds()))
