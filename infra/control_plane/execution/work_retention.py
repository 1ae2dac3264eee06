"""The retention rule for job directories and endpoint working files (docs/local-stack.md, "Processes and disk").

A finished job's directory (its hosts' ``/opt/ml``, merged artifacts) is removed once it is older than the rule for
its outcome: ``SAGESTACK_KEEP_COMPLETED_JOBS_HOURS`` (default 0: at once, the outputs are in S3) and
``SAGESTACK_KEEP_FAILED_JOBS_HOURS`` (default 24, to debug them; Stopped jobs count as failed). An endpoint's
deployment folders are removed when no running deployment uses them (a deleted endpoint, an update's old variant).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from infra.control_plane.core.resource_helpers import utcnow

logger = logging.getLogger(__name__)

# A finished job's folder is kept at least this long whatever the rule: a monitoring execution reads its processing
# job's report from the folder right after the job ends.
SETTLE = timedelta(minutes=1)

__all__ = [
    "SETTLE",
    "EndpointFolders",
    "FinishedWork",
    "JobFolders",
    "RetentionRule",
    "RetentionSweeper",
    "directory_size",
]


class FinishedWork(Protocol):
    """A job resource as the sweeper sees it."""

    name: str
    end_time: datetime | None

    @property
    def status(self) -> object: ...


@dataclass(frozen=True)
class RetentionRule:
    keep_completed: timedelta
    keep_failed: timedelta

    def expired(self, status: str, end_time: datetime | None, now: datetime) -> bool:
        if end_time is None or status not in ("Completed", "Failed", "Stopped"):
            return False  # still running (or never ran)
        keep = self.keep_completed if status == "Completed" else self.keep_failed
        return now - end_time >= max(keep, SETTLE)


@dataclass(frozen=True)
class JobFolders:
    """One kind of job: where its directories are, and its resources by name."""

    work_root: Path
    jobs: Callable[[], Iterable[FinishedWork]]


@dataclass(frozen=True)
class EndpointFolders:
    """Endpoint working files: ``<work_root>/<endpoint>/<deployment>``, and the folders in use."""

    work_root: Path
    in_use: Callable[[], set[Path]]


def sweep_jobs(folders: JobFolders, rule: RetentionRule, now: datetime) -> int:
    removed = 0
    for job in list(folders.jobs()):
        status = getattr(job.status, "value", job.status)
        directory = folders.work_root / job.name
        if rule.expired(str(status), job.end_time, now) and directory.is_dir():
            shutil.rmtree(directory, ignore_errors=True)
            removed += 1
    return removed


def sweep_endpoints(folders: EndpointFolders) -> int:
    if not folders.work_root.is_dir():
        return 0
    in_use = {path.resolve() for path in folders.in_use()}
    removed = 0
    for endpoint_dir in folders.work_root.iterdir():
        for deploy_dir in endpoint_dir.iterdir() if endpoint_dir.is_dir() else ():
            if deploy_dir.is_dir() and deploy_dir.resolve() not in in_use:
                shutil.rmtree(deploy_dir, ignore_errors=True)
                removed += 1
        if endpoint_dir.is_dir() and not any(endpoint_dir.iterdir()):
            endpoint_dir.rmdir()
    return removed


class RetentionSweeper:
    """Applies the rule every ``interval_seconds`` in a daemon thread, and on demand (:meth:`sweep`)."""

    def __init__(
        self,
        rule: RetentionRule,
        jobs: Iterable[JobFolders],
        endpoints: Iterable[EndpointFolders],
        interval_seconds: float,
    ) -> None:
        self._rule = rule
        self._jobs = list(jobs)
        self._endpoints = list(endpoints)
        self._interval = interval_seconds
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._run, name="sagestack-retention", daemon=True).start()

    def close(self) -> None:
        self._stopped.set()

    def sweep(self) -> int:
        """Remove what the rule says is no longer kept; how many folders were removed."""
        with self._lock:
            now = utcnow()
            removed = sum(sweep_jobs(folders, self._rule, now) for folders in self._jobs)
            removed += sum(sweep_endpoints(folders) for folders in self._endpoints)
        if removed:
            logger.info("retention: removed %d job or endpoint folder(s)", removed)
        return removed

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.sweep()
            except OSError:
                logger.exception("retention sweep failed")


def directory_size(path: Path) -> int:
    """Bytes used by the files under ``path`` (symbolic links not followed)."""
    total = 0
    for entry in path.rglob("*") if path.is_dir() else ():
        try:
            if entry.is_file() and not entry.is_symlink():
                total += entry.stat().st_size
        except OSError:
            continue
    return total
