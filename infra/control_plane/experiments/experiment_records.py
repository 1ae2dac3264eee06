"""The Experiments resources (experiment, trial, trial component) and their wire forms.

See docs/experiments.md for what each field holds and how a job's trial component is filled in.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.control_plane.core.resource_helpers import utcnow


@dataclass
class Experiment:
    name: str
    arn: str
    display_name: str | None = None
    description: str | None = None
    source: dict[str, str] | None = None
    creation_time: datetime = field(default_factory=utcnow)
    last_modified: datetime = field(default_factory=utcnow)

    def to_api(self) -> dict[str, Any]:
        return {
            "ExperimentName": self.name,
            "ExperimentArn": self.arn,
            "DisplayName": self.display_name or self.name,
            "Description": self.description,
            "Source": self.source,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "ExperimentArn": self.arn,
            "ExperimentName": self.name,
            "DisplayName": self.display_name or self.name,
            "ExperimentSource": self.source,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified,
        }


@dataclass
class Trial:
    name: str
    arn: str
    experiment_name: str
    display_name: str | None = None
    source: dict[str, str] | None = None
    metadata_properties: dict[str, str] | None = None
    components: list[str] = field(default_factory=list)  # trial component names, in association order
    creation_time: datetime = field(default_factory=utcnow)
    last_modified: datetime = field(default_factory=utcnow)

    def to_api(self) -> dict[str, Any]:
        return {
            "TrialName": self.name,
            "TrialArn": self.arn,
            "DisplayName": self.display_name or self.name,
            "ExperimentName": self.experiment_name,
            "Source": self.source,
            "MetadataProperties": self.metadata_properties,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "TrialArn": self.arn,
            "TrialName": self.name,
            "DisplayName": self.display_name or self.name,
            "TrialSource": self.source,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified,
        }


@dataclass
class MetricSummary:
    """Running statistics of one metric of one trial component (what Describe and Search answer)."""

    name: str
    source_arn: str | None = None
    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    last: float = 0.0
    last_time: datetime | None = None

    def add(self, value: float, when: datetime) -> None:
        self.count += 1
        self.total += value
        self.squares += value * value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        if self.last_time is None or when >= self.last_time:
            self.last, self.last_time = value, when

    def to_api(self) -> dict[str, Any]:
        mean = self.total / self.count if self.count else 0.0
        variance = (self.squares - self.count * mean * mean) / (self.count - 1) if self.count > 1 else 0.0
        return {
            "MetricName": self.name,
            "SourceArn": self.source_arn,
            "TimeStamp": self.last_time,
            "Max": self.maximum,
            "Min": self.minimum,
            "Last": self.last,
            "Count": self.count,
            "Avg": mean,
            "StdDev": max(variance, 0.0) ** 0.5,
        }


@dataclass
class TrialComponent:
    name: str
    arn: str
    display_name: str | None = None
    # Status ({PrimaryStatus, Message}); not named ``status``: the record journal reads that as a lifecycle status.
    status_info: dict[str, str] | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    input_artifacts: dict[str, dict[str, str]] = field(default_factory=dict)
    output_artifacts: dict[str, dict[str, str]] = field(default_factory=dict)
    metadata_properties: dict[str, str] | None = None
    source: dict[str, str] | None = None  # {SourceArn, SourceType} for a job's component
    source_detail: dict[str, Any] | None = None  # the job's Describe answer, under its kind's key
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    trials: list[str] = field(default_factory=list)  # the trials it is associated with
    run_name: str | None = None
    creation_time: datetime = field(default_factory=utcnow)
    last_modified: datetime = field(default_factory=utcnow)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def touch(self) -> None:
        self.last_modified = utcnow()

    def to_api(self) -> dict[str, Any]:
        with self.lock:
            return {
                "TrialComponentName": self.name,
                "TrialComponentArn": self.arn,
                "DisplayName": self.display_name or self.name,
                "Source": self.source,
                "Status": self.status_info,
                "StartTime": self.start_time,
                "EndTime": self.end_time,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
                "Parameters": dict(self.parameters) or None,
                "InputArtifacts": dict(self.input_artifacts) or None,
                "OutputArtifacts": dict(self.output_artifacts) or None,
                "MetadataProperties": self.metadata_properties,
                "Metrics": [summary.to_api() for summary in self.metrics.values()] or None,
                "Sources": [self.source] if self.source else None,
            }

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "TrialComponentName": self.name,
                "TrialComponentArn": self.arn,
                "DisplayName": self.display_name or self.name,
                "TrialComponentSource": self.source,
                "Status": self.status_info,
                "StartTime": self.start_time,
                "EndTime": self.end_time,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
            }


def trial_component_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The Create/UpdateTrialComponent members that map one-to-one onto :class:`TrialComponent` fields."""
    names = {
        "DisplayName": "display_name",
        "Status": "status_info",
        "StartTime": "start_time",
        "EndTime": "end_time",
        "MetadataProperties": "metadata_properties",
    }
    return {attr: params[key] for key, attr in names.items() if params.get(key) is not None}
