"""What transform and processing jobs share: the status model, the resource base, and the launcher thread."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from infra.control_plane.core.api_shapes import ApiShape
from infra.control_plane.core.durable.record_journal import RESTART_REASON
from infra.control_plane.core.errors import ResourceInUse, ValidationException
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.core.store import Store

logger = logging.getLogger(__name__)

REASON_LIMIT = 1024


class JobStatus(str, enum.Enum):
    """``TransformJobStatus`` and ``ProcessingJobStatus`` share AWS's values."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


_TERMINAL = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED}


RequestT = TypeVar("RequestT", bound=ApiShape)


@dataclass
class BatchJob(Generic[RequestT]):
    name: str
    arn: str
    request: RequestT  # the typed Create request the executor runs
    params: Mapping[str, Any]  # the validated request as sent: echoed by Describe, read by nothing else
    creation_time: datetime = field(default_factory=utcnow)
    status: JobStatus = JobStatus.IN_PROGRESS
    failure_reason: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    last_modified: datetime = field(default_factory=utcnow)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def is_terminal(self) -> bool:
        return self.status in _TERMINAL

    def started(self) -> None:
        with self.lock:
            self.start_time = self.last_modified = utcnow()

    def finish(self, status: JobStatus, reason: str | None = None) -> None:
        """Enter a terminal status once; a requested stop turns Completed into Stopped."""
        with self.lock:
            if self.is_terminal:
                return
            if self.stop_requested.is_set() and status is JobStatus.COMPLETED:
                status = JobStatus.STOPPED
            self.status = status
            self.failure_reason = reason[:REASON_LIMIT] if reason and status is JobStatus.FAILED else None
            self.end_time = self.last_modified = utcnow()

    def request_stop(self, kind: str) -> None:
        """``Stop*Job``: only an InProgress job can be stopped (AWS's ValidationException otherwise)."""
        with self.lock:
            if self.status is not JobStatus.IN_PROGRESS:
                raise ValidationException(
                    f"The request was rejected because the {kind} job is in status {self.status.value}."
                )
            self.status = JobStatus.STOPPING
            self.last_modified = utcnow()
            self.stop_requested.set()


def recover_batch_jobs(store: Store[Any]) -> None:
    """Jobs running when the stack stopped end Failed (Stopped when a stop was asked) with the restart reason."""
    for job in store.values():
        if not job.is_terminal:
            job.finish(JobStatus.STOPPED if job.status is JobStatus.STOPPING else JobStatus.FAILED, RESTART_REASON)
            store.changed(job.name)


class JobRunner(Protocol):
    def run(self, job: Any) -> None: ...


def launch_thread(job: BatchJob[Any], prefix: str, run: Callable[[], None]) -> None:
    """Run ``run`` in a daemon thread; whatever it raises, the job ends in a terminal state."""

    def guarded() -> None:
        try:
            run()
        except Exception as exc:
            logger.exception("%s job %s crashed in the control plane", prefix, job.name)
            job.finish(JobStatus.FAILED, f"InternalServerError: {exc}")

    threading.Thread(target=guarded, name=f"{prefix}-{job.name}", daemon=True).start()


def already_exists(arn: str) -> Callable[[str], ResourceInUse]:
    def build(name: str) -> ResourceInUse:
        return ResourceInUse(
            f"Job name must be unique within an AWS account and region, and a job with this name already exists ({arn})"
        )

    return build


def job_not_found(name: str) -> ValidationException:
    return ValidationException(f"Could not find requested job with name {name}")
