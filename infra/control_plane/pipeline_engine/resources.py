"""Pipelines, executions and step records: the resources, their AWS status enums and ``to_api()`` forms."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.pipeline_engine.definition import Definition
from infra.control_plane.pipeline_engine.pipeline_requests import ParallelismConfiguration


class PipelineStatus(str, enum.Enum):
    ACTIVE = "Active"
    DELETING = "Deleting"


class ExecutionStatus(str, enum.Enum):
    EXECUTING = "Executing"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"


class StepStatus(str, enum.Enum):
    STARTING = "Starting"
    EXECUTING = "Executing"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"


TERMINAL_EXECUTION = {ExecutionStatus.STOPPED, ExecutionStatus.FAILED, ExecutionStatus.SUCCEEDED}


@dataclass
class PipelineVersion:
    version_id: int
    definition_text: str
    definition: Definition
    creation_time: datetime = field(default_factory=utcnow)
    display_name: str | None = None
    description: str | None = None

    def summary(self, pipeline_arn: str, last_execution_arn: str | None) -> dict[str, Any]:
        return {
            "PipelineArn": pipeline_arn,
            "PipelineVersionId": self.version_id,
            "CreationTime": self.creation_time,
            "PipelineVersionDisplayName": self.display_name,
            "PipelineVersionDescription": self.description,
            "LastExecutionPipelineExecutionArn": last_execution_arn,
        }


@dataclass
class Pipeline:
    name: str
    arn: str
    role_arn: str
    versions: list[PipelineVersion]
    display_name: str | None = None
    description: str | None = None
    parallelism: ParallelismConfiguration | None = None
    status: PipelineStatus = PipelineStatus.ACTIVE
    creation_time: datetime = field(default_factory=utcnow)
    last_modified: datetime = field(default_factory=utcnow)
    last_run_time: datetime | None = None

    @property
    def latest(self) -> PipelineVersion:
        return self.versions[-1]

    def version(self, version_id: int | None) -> PipelineVersion | None:
        if version_id is None:
            return self.latest
        return next((v for v in self.versions if v.version_id == version_id), None)

    def to_api(self, version: PipelineVersion) -> dict[str, Any]:
        return {
            "PipelineArn": self.arn,
            "PipelineName": self.name,
            "PipelineDisplayName": self.display_name or self.name,
            "PipelineDefinition": version.definition_text,
            "PipelineDescription": self.description,
            "RoleArn": self.role_arn,
            "PipelineStatus": self.status,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified,
            "LastRunTime": self.last_run_time,
            "ParallelismConfiguration": self.parallelism.wire() if self.parallelism else None,
            "PipelineVersionDisplayName": version.display_name,
            "PipelineVersionDescription": version.description,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "PipelineArn": self.arn,
            "PipelineName": self.name,
            "PipelineDisplayName": self.display_name or self.name,
            "PipelineDescription": self.description,
            "RoleArn": self.role_arn,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified,
            "LastExecutionTime": self.last_run_time,
        }


@dataclass
class StepRecord:
    name: str
    step_type: str
    display_name: str | None = None
    description: str | None = None
    status: StepStatus = StepStatus.STARTING
    start_time: datetime = field(default_factory=utcnow)
    end_time: datetime | None = None
    failure_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attempt_count: int = 1
    cache_source: str | None = None
    properties: dict[str, Any] | None = None
    selective_source: str | None = None  # the source execution whose result a selective execution reuses

    def to_api(self) -> dict[str, Any]:
        return {
            "StepName": self.name,
            "StepDisplayName": self.display_name,
            "StepDescription": self.description,
            "StartTime": self.start_time,
            "EndTime": self.end_time,
            "StepStatus": self.status,
            "CacheHitResult": {"SourcePipelineExecutionArn": self.cache_source} if self.cache_source else None,
            "FailureReason": self.failure_reason,
            "Metadata": self.metadata or None,
            "AttemptCount": self.attempt_count,
            "SelectiveExecutionResult": (
                {"SourcePipelineExecutionArn": self.selective_source} if self.selective_source else None
            ),
        }


@dataclass
class Execution:
    arn: str
    execution_id: str
    pipeline: Pipeline
    version: PipelineVersion
    parameters: dict[str, Any]
    display_name: str | None = None
    description: str | None = None
    parallelism: ParallelismConfiguration | None = None
    status: ExecutionStatus = ExecutionStatus.EXECUTING
    failure_reason: str | None = None
    failed_by_fail_step: bool = False
    experiment: dict[str, Any] = field(default_factory=dict)
    creation_time: datetime = field(default_factory=utcnow)
    last_modified: datetime = field(default_factory=utcnow)
    steps: dict[str, StepRecord] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    selected_steps: tuple[str, ...] = ()  # docs/pipelines.md#selective-execution: run only these
    selective_source: str | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def definition(self) -> Definition:
        return self.version.definition

    def max_parallel(self, default: int) -> int:
        for config in (self.parallelism, self.pipeline.parallelism):
            if config is not None and config.max_parallel_execution_steps:
                return max(1, config.max_parallel_execution_steps)
        return default

    def finish(self, status: ExecutionStatus, reason: str | None = None) -> None:
        with self.lock:
            self.status = status
            self.failure_reason = reason[:1300] if reason else None
            self.last_modified = utcnow()

    def to_api(self) -> dict[str, Any]:
        with self.lock:
            return {
                "PipelineArn": self.pipeline.arn,
                "PipelineExecutionArn": self.arn,
                "PipelineExecutionDisplayName": self.display_name
                or f"execution-{int(self.creation_time.timestamp() * 1000)}",
                "PipelineExecutionStatus": self.status,
                "PipelineExecutionDescription": self.description,
                "PipelineExperimentConfig": self.experiment or None,
                "FailureReason": self.failure_reason,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
                "ParallelismConfiguration": self.parallelism.wire() if self.parallelism else None,
                "PipelineVersionId": self.version.version_id,
                "SelectiveExecutionConfig": self._selective_config(),
            }

    def _selective_config(self) -> dict[str, Any] | None:
        if not self.selected_steps:
            return None
        config: dict[str, Any] = {"SelectedSteps": [{"StepName": name} for name in self.selected_steps]}
        if self.selective_source:
            config["SourcePipelineExecutionArn"] = self.selective_source
        return config

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "PipelineExecutionArn": self.arn,
                "StartTime": self.creation_time,
                "PipelineExecutionStatus": self.status,
                "PipelineExecutionDescription": self.description,
                "PipelineExecutionDisplayName": self.display_name,
                "PipelineExecutionFailureReason": self.failure_reason,
            }
