"""The filters of ListMonitoringSchedules and ListMonitoringExecutions (name, status and time filters are applied by
``core.pagination``; these are the monitoring-specific ones)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from infra.control_plane.monitoring.monitoring_executions import MonitoringExecution
from infra.control_plane.monitoring.monitoring_plans import SchedulePlan

logger = logging.getLogger(__name__)

__all__ = ["execution_matches", "schedule_matches"]


def schedule_matches(plan: SchedulePlan, params: Mapping[str, Any]) -> bool:
    """``EndpointName``, ``MonitoringJobDefinitionName`` and ``MonitoringTypeEquals`` of a schedule listing."""
    return (
        params.get("EndpointName") in (None, plan.endpoint_name)
        and params.get("MonitoringJobDefinitionName") in (None, plan.definition_name)
        and params.get("MonitoringTypeEquals") in (None, plan.monitoring_type.value)
    )


def execution_matches(execution: MonitoringExecution, params: Mapping[str, Any]) -> bool:
    """The schedule, endpoint, job definition and type filters, and ``ScheduledTimeAfter``/``Before``."""
    if params.get("MonitoringScheduleName") not in (None, execution.schedule_name):
        return False
    if params.get("EndpointName") not in (None, execution.endpoint_name):
        return False
    if params.get("MonitoringJobDefinitionName") not in (None, execution.definition_name):
        return False
    if params.get("MonitoringTypeEquals") not in (None, execution.monitoring_type.value):
        return False
    after, before = params.get("ScheduledTimeAfter"), params.get("ScheduledTimeBefore")
    if after is not None and execution.scheduled_time <= _as_datetime(after):
        return False
    return before is None or execution.scheduled_time < _as_datetime(before)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
