"""A schedule's ``MonitoringScheduleConfig`` validated into a plan: what runs, when, over which window offsets.

Exactly one of an inline ``MonitoringJobDefinition`` (a DataQuality job) or ``MonitoringJobDefinitionName`` with its
``MonitoringType``; a ``NOW`` schedule needs both ``DataAnalysisStartTime`` and ``DataAnalysisEndTime``; without
them the job input's ``StartTimeOffset``/``EndTimeOffset`` apply; the monitored endpoint must exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.monitoring.monitoring_api_requests import MonitoringScheduleConfig
from infra.control_plane.monitoring.monitoring_definitions import (
    MonitoringJob,
    MonitoringJobDefinitions,
    MonitoringType,
    job_from_inline,
)
from infra.control_plane.monitoring.monitoring_time import ScheduleExpression, parse_offset, validate_offsets

logger = logging.getLogger(__name__)

__all__ = ["SchedulePlan", "plan_schedule", "schedule_job"]


@dataclass(frozen=True)
class SchedulePlan:
    """A validated ``MonitoringScheduleConfig``: what runs, when, over which window offsets."""

    monitoring_type: MonitoringType
    definition_name: str | None
    endpoint_name: str | None
    expression: ScheduleExpression
    start_offset: timedelta | None
    end_offset: timedelta | None


def plan_schedule(
    config: MonitoringScheduleConfig, definitions: MonitoringJobDefinitions, endpoint_exists: Callable[[str], bool]
) -> tuple[SchedulePlan, MonitoringJob]:
    """The plan and the job it runs now, or a ``ValidationException`` / ``ResourceNotFound``."""
    schedule_config = config.schedule_config
    expression = ScheduleExpression.parse(schedule_config.schedule_expression if schedule_config else None)
    start = _offset(schedule_config.data_analysis_start_time if schedule_config else None, "DataAnalysisStartTime")
    end = _offset(schedule_config.data_analysis_end_time if schedule_config else None, "DataAnalysisEndTime")
    if expression.one_time and (start is None or end is None):
        raise ValidationException(
            "A NOW (one-time) monitoring schedule requires ScheduleConfig.DataAnalysisStartTime and "
            "DataAnalysisEndTime, e.g. -PT1H and -PT0H."
        )
    validate_offsets(start, end, "data analysis")
    kind = _monitoring_type(config)
    plan = SchedulePlan(kind, config.monitoring_job_definition_name, None, expression, start, end)
    job = schedule_job(plan, config, definitions)
    endpoint_input = job.endpoint_input
    input_start = _offset(endpoint_input.start_time_offset if endpoint_input else None, "StartTimeOffset")
    input_end = _offset(endpoint_input.end_time_offset if endpoint_input else None, "EndTimeOffset")
    validate_offsets(input_start, input_end, "job input")
    if start is None and end is None:
        start, end = input_start, input_end
    if job.endpoint_name is not None and not endpoint_exists(job.endpoint_name):
        raise ValidationException(f'Could not find endpoint "{job.endpoint_name}".')
    return SchedulePlan(kind, plan.definition_name, job.endpoint_name, expression, start, end), job


def schedule_job(
    plan: SchedulePlan, config: MonitoringScheduleConfig, definitions: MonitoringJobDefinitions
) -> MonitoringJob:
    """The job the schedule runs: its inline definition, else the named job definition as it is now."""
    inline = config.monitoring_job_definition
    if inline is not None:
        return job_from_inline(inline)
    return definitions.get(plan.monitoring_type, str(plan.definition_name)).job()


def _monitoring_type(config: MonitoringScheduleConfig) -> MonitoringType:
    inline, named = config.monitoring_job_definition, config.monitoring_job_definition_name
    if (inline is None) == (named is None):
        raise ValidationException(
            "MonitoringScheduleConfig must have exactly one of MonitoringJobDefinition or MonitoringJobDefinitionName."
        )
    requested = config.monitoring_type
    if inline is not None:
        if requested not in (None, MonitoringType.DATA_QUALITY.value):
            raise ValidationException("An inline MonitoringJobDefinition is a DataQuality job definition.")
        return MonitoringType.DATA_QUALITY
    if requested is None:
        raise ValidationException("MonitoringType is required with MonitoringJobDefinitionName.")
    return MonitoringType(requested)


def _offset(value: str | None, key: str) -> timedelta | None:
    return parse_offset(value, key) if value else None
