"""Monitoring schedules: Create/Describe/List/Update/Start/Stop/DeleteMonitoringSchedule, ListMonitoringExecutions,
and the scheduler that fires due schedules.

A cron schedule keeps its next fire time; the scheduler thread (started with the first schedule) calls
:meth:`MonitoringSchedules.tick` every ``SAGESTACK_MONITOR_TICK_SECONDS`` and starts one execution per due schedule,
for the latest fire time that has passed (missed older ones are not back-filled, and a schedule whose previous
execution still runs skips that fire time). ``NOW`` schedules run once, at Create (and again at an Update that
sets ``NOW``). Tests drive time with :attr:`MonitoringSchedules.clock` (``advance``) and ``tick(at)``. The
config is validated into a plan by ``monitoring_plans.py``; the List filters are in ``monitoring_filters.py``.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.control_plane.core.api_shapes import parse_request
from infra.control_plane.core.durable.record_journal import RESTART_REASON
from infra.control_plane.core.errors import ResourceInUse, ResourceNotFound, ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import arn_for, tags_from, utcnow
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.monitoring.monitoring_api_requests import MonitoringScheduleRequest
from infra.control_plane.monitoring.monitoring_definitions import (
    MonitoringJob,
    MonitoringJobDefinitions,
    MonitoringType,
)
from infra.control_plane.monitoring.monitoring_executions import (
    ExecutionRunner,
    ExecutionStatus,
    MonitoringExecution,
    Window,
)
from infra.control_plane.monitoring.monitoring_filters import execution_matches, schedule_matches
from infra.control_plane.monitoring.monitoring_plans import SchedulePlan, plan_schedule, schedule_job
from infra.control_plane.monitoring.monitoring_time import analysis_window

logger = logging.getLogger(__name__)

__all__ = ["MonitoringClock", "MonitoringSchedule", "MonitoringSchedules", "ScheduleStatus"]


class ScheduleStatus(str, enum.Enum):
    PENDING = "Pending"
    FAILED = "Failed"
    SCHEDULED = "Scheduled"
    STOPPED = "Stopped"


class MonitoringClock:
    """UTC now, plus an offset tests can advance (the scheduler's only source of time)."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._offset += delta
        return self.now()


@dataclass
class MonitoringSchedule:
    name: str
    arn: str
    request: MonitoringScheduleRequest  # the last Create or Update: what the plan and the executions come from
    params: Mapping[str, Any]  # that request as sent: its config is echoed by Describe, read by nothing else
    plan: SchedulePlan
    creation_time: datetime = field(default_factory=utcnow)
    last_modified: datetime = field(default_factory=utcnow)
    status: ScheduleStatus = ScheduleStatus.SCHEDULED
    failure_reason: str | None = None
    next_fire: datetime | None = None
    last_execution: MonitoringExecution | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)

    def to_api(self) -> dict[str, Any]:
        with self.lock:
            last = self.last_execution
            return {
                "MonitoringScheduleArn": self.arn,
                "MonitoringScheduleName": self.name,
                "MonitoringScheduleStatus": self.status.value,
                "MonitoringType": self.plan.monitoring_type.value,
                "FailureReason": self.failure_reason,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
                "MonitoringScheduleConfig": self.params["MonitoringScheduleConfig"],
                "EndpointName": self.plan.endpoint_name,
                "LastMonitoringExecutionSummary": last.summary() if last is not None else None,
            }

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "MonitoringScheduleName": self.name,
                "MonitoringScheduleArn": self.arn,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
                "MonitoringScheduleStatus": self.status.value,
                "EndpointName": self.plan.endpoint_name,
                "MonitoringJobDefinitionName": self.plan.definition_name,
                "MonitoringType": self.plan.monitoring_type.value,
            }


_SCHEDULE_LIST: ListSpec[MonitoringSchedule] = ListSpec(
    name=lambda s: s.name,
    creation_time=lambda s: s.creation_time,
    status=lambda s: s.status.value,
    last_modified=lambda s: s.last_modified,
)
_EXECUTION_LIST: ListSpec[MonitoringExecution] = ListSpec(
    name=lambda e: e.schedule_name,
    creation_time=lambda e: e.creation_time,
    status=lambda e: e.status.value,
    last_modified=lambda e: e.last_modified,
    extra_sort_keys={"ScheduledTime": lambda e: e.scheduled_time},
)


class MonitoringSchedules:
    """Handlers for schedules and executions of one account/region, and their scheduler."""

    def __init__(
        self,
        account_id: str,
        region: str,
        definitions: MonitoringJobDefinitions,
        runner: ExecutionRunner,
        endpoint_exists: Callable[[str], bool],
        tick_seconds: float,
    ) -> None:
        self._account_id = account_id
        self._region = region
        self._definitions = definitions
        self._runner = runner
        self._endpoint_exists = endpoint_exists
        self._tick_seconds = tick_seconds
        self.clock = MonitoringClock()
        self.store: Store[MonitoringSchedule] = Store("monitoring-schedule", _not_found, MonitoringSchedule)
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("monitoring-schedule-tags", list)
        self._executions: MutableMapping[str, MonitoringExecution] = DurableMap(
            "monitoring-execution", MonitoringExecution
        )
        self._lock = threading.RLock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        definitions.users = self._users_of

    # -- API ---------------------------------------------------------------------------------------------------

    def create_monitoring_schedule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["MonitoringScheduleName"])
        arn = arn_for("monitoring-schedule", name, self._account_id, self._region)
        request = parse_request(MonitoringScheduleRequest, params)
        plan, job = plan_schedule(request.monitoring_schedule_config, self._definitions, self._endpoint_exists)
        schedule = MonitoringSchedule(name=name, arn=arn, request=request, params=dict(params), plan=plan)
        self.store.add(name, schedule, lambda n: ResourceInUse(f"Monitoring schedule {arn} already exists."))
        self.tags[arn] = tags_from(params)
        self._arm(schedule, job)
        return {"MonitoringScheduleArn": arn}

    def describe_monitoring_schedule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.store.get_or_raise(str(params["MonitoringScheduleName"])).to_api()

    def list_monitoring_schedules(self, params: Mapping[str, Any]) -> dict[str, Any]:
        items = [s for s in self.store.values() if schedule_matches(s.plan, params)]
        page, token = paginate(items, params, _SCHEDULE_LIST)
        return {"MonitoringScheduleSummaries": [s.summary() for s in page], "NextToken": token}

    def update_monitoring_schedule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        schedule = self.store.get_or_raise(str(params["MonitoringScheduleName"]))
        request = parse_request(MonitoringScheduleRequest, params)
        plan, job = plan_schedule(request.monitoring_schedule_config, self._definitions, self._endpoint_exists)
        with schedule.lock:
            schedule.request, schedule.params, schedule.plan = request, dict(params), plan
            schedule.last_modified = utcnow()
            schedule.failure_reason = None
            running = schedule.status is ScheduleStatus.SCHEDULED
        if running:
            self._arm(schedule, job)
        return {"MonitoringScheduleArn": schedule.arn}

    def start_monitoring_schedule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        schedule = self.store.get_or_raise(str(params["MonitoringScheduleName"]))
        with schedule.lock:
            if schedule.status is ScheduleStatus.SCHEDULED:
                return {}
            schedule.status = ScheduleStatus.SCHEDULED
            schedule.last_modified = utcnow()
            schedule.next_fire = schedule.plan.expression.next_after(self.clock.now())
        return {}

    def stop_monitoring_schedule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        schedule = self.store.get_or_raise(str(params["MonitoringScheduleName"]))
        with schedule.lock:
            schedule.status = ScheduleStatus.STOPPED
            schedule.next_fire = None
            schedule.last_modified = utcnow()
        return {}

    def delete_monitoring_schedule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        schedule = self.store.remove(str(params["MonitoringScheduleName"]))
        with schedule.lock:
            schedule.status = ScheduleStatus.STOPPED
            schedule.next_fire = None
        self.tags.pop(schedule.arn, None)
        return {}

    def list_monitoring_executions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            items = [e for e in self._executions.values() if execution_matches(e, params)]
        page, token = paginate(items, {"SortBy": "ScheduledTime", **params}, _EXECUTION_LIST)
        return {"MonitoringExecutionSummaries": [e.summary() for e in page], "NextToken": token}

    # -- scheduling --------------------------------------------------------------------------------------------

    def tick(self, at: datetime | None = None) -> list[MonitoringExecution]:
        """Fire every due cron schedule as of ``at`` (default: the clock); returns the executions started."""
        now = at or self.clock.now()
        started = []
        for schedule in self.store.values():
            with schedule.lock:
                due = (
                    schedule.status is ScheduleStatus.SCHEDULED
                    and schedule.next_fire is not None
                    and schedule.next_fire <= now
                )
                if not due:
                    continue
                scheduled = schedule.plan.expression.latest_at_or_before(now) or now
                schedule.next_fire = schedule.plan.expression.next_after(scheduled)
            try:
                job = schedule_job(schedule.plan, schedule.request.monitoring_schedule_config, self._definitions)
            except (ValidationException, ResourceNotFound) as exc:
                logger.warning("monitoring schedule %s cannot run: %s", schedule.name, exc.message)
                self._record(schedule, scheduled).set(ExecutionStatus.FAILED, f"ClientError: {exc.message}")
                continue
            fired = self._fire(schedule, job, scheduled)
            if fired is not None:
                started.append(fired)
        return started

    def recover_after_restart(self) -> None:
        """Schedules keep their schedule (the next fire is computed from now); executions that were running end
        Failed with the restart reason."""
        for key in list(self._executions):
            execution = self._executions[key]
            if not execution.is_terminal:
                with execution.lock:
                    execution.status, execution.failure_reason = ExecutionStatus.FAILED, RESTART_REASON
                    execution.last_modified = utcnow()
        for schedule in self.store.values():
            with schedule.lock:
                last = schedule.last_execution
                if last is not None and not last.is_terminal:
                    last.status, last.failure_reason = ExecutionStatus.FAILED, RESTART_REASON
                if schedule.status is not ScheduleStatus.SCHEDULED or schedule.plan.expression.one_time:
                    continue
                schedule.next_fire = schedule.plan.expression.next_after(self.clock.now())
            self.store.changed(schedule.name)
            self._ensure_thread()

    def close(self) -> None:
        self._stopped.set()

    def _arm(self, schedule: MonitoringSchedule, job: MonitoringJob) -> None:
        expression = schedule.plan.expression
        if expression.one_time:
            with schedule.lock:
                schedule.next_fire = None
            self._fire(schedule, job, self.clock.now())
            return
        with schedule.lock:
            schedule.next_fire = expression.next_after(self.clock.now())
        self._ensure_thread()

    def _fire(
        self, schedule: MonitoringSchedule, job: MonitoringJob, scheduled: datetime
    ) -> MonitoringExecution | None:
        with schedule.lock:
            previous = schedule.last_execution
            if previous is not None and not previous.is_terminal and not schedule.plan.expression.one_time:
                logger.warning(
                    "monitoring schedule %s: the execution scheduled at %s still runs; skipping %s",
                    schedule.name,
                    previous.scheduled_time,
                    scheduled,
                )
                return None
            execution = self._record(schedule, scheduled)
            plan = schedule.plan
        start, end = analysis_window(plan.expression, scheduled, plan.start_offset, plan.end_offset)
        logger.info("monitoring schedule %s: execution over [%s, %s)", schedule.name, start, end)
        self._runner.launch(execution, job, Window(start, end))
        return execution

    def _record(self, schedule: MonitoringSchedule, scheduled: datetime) -> MonitoringExecution:
        execution = MonitoringExecution(
            schedule_name=schedule.name,
            scheduled_time=scheduled,
            monitoring_type=schedule.plan.monitoring_type,
            definition_name=schedule.plan.definition_name,
            endpoint_name=schedule.plan.endpoint_name,
        )
        with self._lock:
            self._executions[f"{execution.schedule_name}/{len(self._executions):08d}"] = execution
        with schedule.lock:
            schedule.last_execution = execution
        return execution

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(target=self._loop, name="sagestack-monitoring", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.wait(self._tick_seconds):
            try:
                self.tick()
            except Exception:
                logger.exception("monitoring scheduler tick failed")

    def _users_of(self, kind: MonitoringType, name: str) -> list[str]:
        return [
            s.name for s in self.store.values() if s.plan.monitoring_type is kind and s.plan.definition_name == name
        ]


def _not_found(name: str) -> ResourceNotFound:
    return ResourceNotFound(f"Monitoring schedule {name} does not exist.")
