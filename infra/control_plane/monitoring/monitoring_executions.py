"""Monitoring executions: one execution of a schedule is one processing job, run in its own thread.

What the job gets is built by ``monitoring_requests.py`` (the analyzer for data and model quality, the Clarify
container for bias and explainability). The execution ends ``Completed``, ``CompletedWithViolations`` (a non-empty
``constraint_violations.json``), ``Failed`` (with the job's ``FailureReason``, or a ``ClientError`` found before any
job started) or ``Stopped``; an empty bias/explainability window completes without a job. CloudWatch: see
``monitoring_metrics.py``.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.control_plane.core.aws_services import S3AccessError, S3Location
from infra.control_plane.core.errors import ServiceError
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.execution.batch_jobs import REASON_LIMIT, JobStatus
from infra.control_plane.monitoring.clarify.monitoring_clarify import ClarifySetupError, EmptyWindow
from infra.control_plane.monitoring.clarify.monitoring_clarify_run import ClarifyRunState, conclude_clarify
from infra.control_plane.monitoring.monitoring_captures import EndpointCaptures
from infra.control_plane.monitoring.monitoring_definitions import MonitoringJob, MonitoringType
from infra.control_plane.monitoring.monitoring_metrics import forward_metrics_file, publish_metrics
from infra.control_plane.monitoring.monitoring_requests import (
    ExecutionContext,
    ExecutionPlan,
    ExecutionSetupError,
    Window,
    processing_request,
)
from infra.control_plane.processing.processing_jobs import ProcessingJob

logger = logging.getLogger(__name__)

__all__ = [
    "EndpointCaptures",
    "ExecutionContext",
    "ExecutionRunner",
    "ExecutionStatus",
    "MonitoringExecution",
    "Window",
    "is_builtin_analyzer",
]

ANALYZER_IMAGE = re.compile(r"sagemaker-model-monitor-analyzer|sagestack[-/]model[-_]monitor")
_POLL_SECONDS = 0.25


class ExecutionStatus(str, enum.Enum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    COMPLETED_WITH_VIOLATIONS = "CompletedWithViolations"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


_TERMINAL = {
    ExecutionStatus.COMPLETED,
    ExecutionStatus.COMPLETED_WITH_VIOLATIONS,
    ExecutionStatus.FAILED,
    ExecutionStatus.STOPPED,
}


@dataclass
class MonitoringExecution:
    schedule_name: str
    scheduled_time: datetime
    monitoring_type: MonitoringType
    definition_name: str | None
    endpoint_name: str | None
    creation_time: datetime = field(default_factory=utcnow)
    last_modified: datetime = field(default_factory=utcnow)
    status: ExecutionStatus = ExecutionStatus.PENDING
    failure_reason: str | None = None
    processing_job_arn: str | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def is_terminal(self) -> bool:
        return self.status in _TERMINAL

    def set(self, status: ExecutionStatus, reason: str | None = None) -> None:
        with self.lock:
            if self.is_terminal:
                return
            self.status = status
            self.failure_reason = reason[:REASON_LIMIT] if reason else None
            self.last_modified = utcnow()

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "MonitoringScheduleName": self.schedule_name,
                "ScheduledTime": self.scheduled_time,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
                "MonitoringExecutionStatus": self.status.value,
                "ProcessingJobArn": self.processing_job_arn,
                "EndpointName": self.endpoint_name,
                "FailureReason": self.failure_reason,
                "MonitoringJobDefinitionName": self.definition_name,
                "MonitoringType": self.monitoring_type.value,
            }


def is_builtin_analyzer(image_uri: str) -> bool:
    return ANALYZER_IMAGE.search(image_uri) is not None


class ExecutionRunner:
    """Runs executions, each in its own daemon thread; whatever happens, the execution ends terminal."""

    def __init__(self, context: ExecutionContext) -> None:
        self._ctx = context

    def launch(self, execution: MonitoringExecution, job: MonitoringJob, window: Window) -> None:
        def guarded() -> None:
            try:
                _Run(self._ctx, execution, job, window).run()
            except Exception as exc:
                logger.exception("monitoring execution of %s crashed", execution.schedule_name)
                execution.set(ExecutionStatus.FAILED, f"InternalServerError: {exc}")

        name = f"monitoring-{execution.schedule_name}"
        threading.Thread(target=guarded, name=name, daemon=True).start()


class _Run:
    def __init__(
        self, context: ExecutionContext, execution: MonitoringExecution, job: MonitoringJob, window: Window
    ) -> None:
        self.ctx = context
        self.execution = execution
        self.job = job
        stamp = execution.scheduled_time.strftime("%Y%m%d%H%M")
        job_name = f"model-monitoring-{stamp}-{uuid.uuid4().hex[:24]}"
        self.plan = ExecutionPlan(job, job_name, execution.schedule_name, execution.scheduled_time, window)
        self.clarify: ClarifyRunState | None = None

    def run(self) -> None:
        try:
            request, self.clarify = processing_request(self.ctx, self.plan)
        except (ExecutionSetupError, ClarifySetupError) as exc:
            self.execution.set(ExecutionStatus.FAILED, str(exc))
            return
        except EmptyWindow as exc:
            self.execution.set(ExecutionStatus.COMPLETED, str(exc))
            return
        try:
            arn = self.ctx.processing_jobs.create_processing_job(request)["ProcessingJobArn"]
        except ServiceError as exc:
            self.execution.set(ExecutionStatus.FAILED, f"ClientError: {exc.message}")
            return
        with self.execution.lock:
            self.execution.processing_job_arn = arn
        self.execution.set(ExecutionStatus.IN_PROGRESS)
        processing = self.ctx.processing_jobs.store.get_or_raise(self.plan.job_name)
        while not processing.is_terminal:
            time.sleep(_POLL_SECONDS)
        self._conclude(processing, str(request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]))

    def _conclude(self, processing: ProcessingJob, output_uri: str) -> None:
        with processing.lock:
            status, reason, message = processing.status, processing.failure_reason, processing.exit_message or ""
        if status is JobStatus.STOPPED:
            self.execution.set(ExecutionStatus.STOPPED)
        elif status is not JobStatus.COMPLETED:
            self.execution.set(ExecutionStatus.FAILED, reason or message or "the monitoring job failed")
        elif self.clarify is not None:
            self._conclude_clarify(self.clarify, output_uri)
        else:
            self._conclude_analyzer(output_uri, message)

    def _conclude_clarify(self, state: ClarifyRunState, output_uri: str) -> None:
        count, failure, records = conclude_clarify(self.ctx.s3, state, output_uri)
        if records:
            publish_metrics(self.ctx.account_id, self.ctx.region, records, self.execution.endpoint_name)
        if failure:
            self.execution.set(ExecutionStatus.FAILED, failure)
        else:
            self.execution.set(ExecutionStatus.COMPLETED_WITH_VIOLATIONS if count else ExecutionStatus.COMPLETED)

    def _conclude_analyzer(self, output_uri: str, message: str) -> None:
        if not is_builtin_analyzer(self.job.app.image_uri):
            host = self.ctx.processing_work_root / self.plan.job_name / "hosts" / "algo-1"
            forward_metrics_file(host, self.ctx.account_id, self.ctx.region, self.execution.endpoint_name)
        violations = self._violation_count(output_uri)
        with_violations = violations > 0 or (violations < 0 and message.startswith("CompletedWithViolations"))
        self.execution.set(ExecutionStatus.COMPLETED_WITH_VIOLATIONS if with_violations else ExecutionStatus.COMPLETED)

    def _violation_count(self, output_uri: str) -> int:
        """Violations in the uploaded ``constraint_violations.json``; -1 when there is no readable file."""
        try:
            raw = self.ctx.s3.get_bytes(S3Location.parse(f"{output_uri}/constraint_violations.json"))
            violations = json.loads(raw).get("violations")
        except (S3AccessError, ValueError, AttributeError):
            return -1
        return len(violations) if isinstance(violations, list) else -1
