"""Hyperparameter tuning jobs: the resource, its status model and the API handlers.

The search itself runs in :mod:`tuning_runner`; training jobs are created through :class:`TrainingJobs`, the same
code path as CreateTrainingJob.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from infra.control_plane.core.api_shapes import parse_request
from infra.control_plane.core.durable.record_journal import RESTART_REASON
from infra.control_plane.core.errors import ResourceInUse, ResourceNotFound, ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.quotas import QuotaLedger
from infra.control_plane.core.resource_helpers import arn_for, get_or_raise, not_found, tags_from, utcnow
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.training.training_jobs import TrainingJob, TrainingJobStatus
from infra.control_plane.tuning.tuning_request import CreateHyperParameterTuningJobRequest
from infra.control_plane.tuning.tuning_validation import TuningLimits, TuningPlan, child_instance_count, plan_tuning_job


class TuningJobStatus(str, enum.Enum):
    COMPLETED = "Completed"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    STOPPED = "Stopped"
    STOPPING = "Stopping"


class ObjectiveStatus(str, enum.Enum):
    SUCCEEDED = "Succeeded"
    PENDING = "Pending"
    FAILED = "Failed"


_TERMINAL = {TuningJobStatus.COMPLETED, TuningJobStatus.FAILED, TuningJobStatus.STOPPED}


@dataclass
class ChildJob:
    """One training job launched by a tuning job, with what the tuner learned from its logs."""

    tuning_name: str
    trial: int
    definition_index: int
    definition_name: str | None
    training: TrainingJob
    tuned: dict[str, str]
    maximize: bool
    metric: str
    values: list[float] = field(default_factory=list)
    stopped_by_tuner: bool = False
    pruned: bool = False
    finished: bool = False
    objective: float | None = None

    @property
    def name(self) -> str:
        return self.training.name

    @property
    def objective_status(self) -> ObjectiveStatus:
        if not self.finished:
            return ObjectiveStatus.PENDING
        return ObjectiveStatus.FAILED if self.objective is None else ObjectiveStatus.SUCCEEDED

    @property
    def eligible(self) -> bool:
        """Can be the best job: finished with an objective, completed or stopped by the tuner."""
        status = self.training.status
        ok = status is TrainingJobStatus.COMPLETED or (status is TrainingJobStatus.STOPPED and self.stopped_by_tuner)
        return self.finished and self.objective is not None and ok

    def better_than(self, other: ChildJob | None) -> bool:
        if other is None or other.objective is None:
            return True
        assert self.objective is not None
        return self.objective > other.objective if self.maximize else self.objective < other.objective

    def to_api(self) -> dict[str, Any]:
        training = self.training
        with training.lock:
            summary: dict[str, Any] = {
                "TrainingJobDefinitionName": self.definition_name,
                "TrainingJobName": training.name,
                "TrainingJobArn": training.arn,
                "TuningJobName": self.tuning_name,
                "CreationTime": training.creation_time,
                "TrainingStartTime": training.start_time,
                "TrainingEndTime": training.end_time,
                "TrainingJobStatus": training.status,
                "TunedHyperParameters": dict(self.tuned),
                "FailureReason": training.failure_reason,
                "ObjectiveStatus": self.objective_status,
            }
        if self.finished and self.objective is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": "Maximize" if self.maximize else "Minimize",
                "MetricName": self.metric,
                "Value": self.objective,
            }
        return summary


@dataclass
class TuningJob:
    name: str
    arn: str
    request: CreateHyperParameterTuningJobRequest  # what the plan and the runner were built from
    params: Mapping[str, Any]  # the validated request as sent: echoed by Describe, read by nothing else
    plan: TuningPlan
    creation_time: datetime = field(default_factory=utcnow)
    status: TuningJobStatus = TuningJobStatus.IN_PROGRESS
    end_time: datetime | None = None
    last_modified: datetime = field(default_factory=utcnow)
    failure_reason: str | None = None
    children: list[ChildJob] = field(default_factory=list)
    parent_best: ChildJob | None = None
    not_improving: int = 0
    stop_requested: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def is_terminal(self) -> bool:
        return self.status in _TERMINAL

    def finish(self, status: TuningJobStatus, reason: str | None = None) -> None:
        with self.lock:
            if self.is_terminal:
                return
            self.status, self.failure_reason = status, reason[:1024] if reason else None
            self.end_time = self.last_modified = utcnow()

    def best(self) -> ChildJob | None:
        with self.lock:
            best: ChildJob | None = None
            for child in self.children:
                if child.eligible and child.better_than(best):
                    best = child
            return best

    def _counters(self) -> tuple[dict[str, int], dict[str, int]]:
        training = dict.fromkeys(("Completed", "InProgress", "RetryableError", "NonRetryableError", "Stopped"), 0)
        objective = dict.fromkeys(("Succeeded", "Pending", "Failed"), 0)
        for child in self.children:
            training[_training_counter(child.training)] += 1
            objective[child.objective_status.value] += 1
        return training, objective

    def to_api(self) -> dict[str, Any]:
        with self.lock:
            training, objective = self._counters()
            best = self.best()
            overall = self._overall_best(best)
            body: dict[str, Any] = {
                key: self.params.get(key)
                for key in ("HyperParameterTuningJobConfig", "TrainingJobDefinition", "TrainingJobDefinitions")
            }
            body.update(
                HyperParameterTuningJobName=self.name,
                HyperParameterTuningJobArn=self.arn,
                WarmStartConfig=self.params.get("WarmStartConfig"),
                HyperParameterTuningJobStatus=self.status,
                CreationTime=self.creation_time,
                HyperParameterTuningEndTime=self.end_time,
                LastModifiedTime=self.last_modified,
                TrainingJobStatusCounters=training,
                ObjectiveStatusCounters=objective,
                BestTrainingJob=best.to_api() if best else None,
                OverallBestTrainingJob=overall.to_api() if overall else None,
                FailureReason=self.failure_reason,
                TuningJobCompletionDetails={"NumberOfTrainingJobsObjectiveNotImproving": self.not_improving},
                ConsumedResources={"RuntimeInSeconds": self._runtime_seconds()},
            )
            return body

    def _overall_best(self, best: ChildJob | None) -> ChildJob | None:
        warm = self.request.warm_start_config
        if warm is None or warm.warm_start_type != "IdenticalDataAndAlgorithm":
            return None
        if self.parent_best is not None and self.parent_best.better_than(best):
            return self.parent_best
        return best

    def _runtime_seconds(self) -> int:
        end = self.end_time or utcnow()
        return int((end - self.creation_time).total_seconds())

    def summary(self) -> dict[str, Any]:
        with self.lock:
            training, objective = self._counters()
            config = self.request.hyper_parameter_tuning_job_config
            return {
                "HyperParameterTuningJobName": self.name,
                "HyperParameterTuningJobArn": self.arn,
                "HyperParameterTuningJobStatus": self.status,
                "Strategy": config.strategy,
                "CreationTime": self.creation_time,
                "HyperParameterTuningEndTime": self.end_time,
                "LastModifiedTime": self.last_modified,
                "TrainingJobStatusCounters": training,
                "ObjectiveStatusCounters": objective,
                "ResourceLimits": config.resource_limits.wire(),
            }


def _training_counter(training: TrainingJob) -> str:
    status = training.status
    if status is TrainingJobStatus.FAILED:
        internal = (training.failure_reason or "").startswith("InternalServerError")
        return "RetryableError" if internal else "NonRetryableError"
    if status in (TrainingJobStatus.IN_PROGRESS, TrainingJobStatus.STOPPING):
        return "InProgress"
    return status.value


_TUNING_LIST: ListSpec[TuningJob] = ListSpec(
    name=lambda job: job.name,
    creation_time=lambda job: job.creation_time,
    status=lambda job: job.status.value,
    last_modified=lambda job: job.last_modified,
)
_CHILD_LIST: ListSpec[ChildJob] = ListSpec(
    name=lambda child: child.name,
    creation_time=lambda child: child.training.creation_time,
    status=lambda child: child.training.status.value,
    extra_sort_keys={"FinalObjectiveMetricValue": lambda child: child.objective},
)


class TuningLauncher(Protocol):
    def launch(self, job: TuningJob, parents: list[TuningJob]) -> None: ...


class TuningJobs:
    """Handlers for the tuning-job operations of one account/region."""

    def __init__(
        self,
        account_id: str,
        region: str,
        launcher: TuningLauncher,
        limits: TuningLimits,
        quotas: QuotaLedger | None = None,
    ) -> None:
        self._account_id, self._region = account_id, region
        self._launcher, self._limits = launcher, limits
        self._quotas = quotas or QuotaLedger()
        self.store: Store[TuningJob] = Store(
            "hyper-parameter-tuning-job",
            not_found("Amazon SageMaker can't find a tuning job with name {name}", ResourceNotFound),
            TuningJob,
        )
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("hyper-parameter-tuning-job-tags", list)

    def create_hyper_parameter_tuning_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["HyperParameterTuningJobName"])
        arn = arn_for("hyper-parameter-tuning-job", name, self._account_id, self._region)
        if any(job.name.lower() == name.lower() for job in self.store.values()):
            raise _already_exists(name)
        request = parse_request(CreateHyperParameterTuningJobRequest, params)
        plan = plan_tuning_job(request, self._limits)
        self._check_quotas(plan)
        parents = self._parents(request, plan)
        job = TuningJob(name=name, arn=arn, request=request, params=dict(params), plan=plan)
        self.store.add(name, job, _already_exists)
        self.tags[arn] = tags_from(params)
        self._launcher.launch(job, parents)
        return {"HyperParameterTuningJobArn": arn}

    def _check_quotas(self, plan: TuningPlan) -> None:
        """Each training job within the per-job quota; the parallel ones within the running-instances quota."""
        counts = [child_instance_count(definition) for definition in plan.definitions]
        for count in counts:
            self._quotas.check_instance_count("training job", count)
        self._quotas.check_running_instances(min(plan.max_parallel, plan.max_jobs) * max(counts))

    def _parents(self, request: CreateHyperParameterTuningJobRequest, plan: TuningPlan) -> list[TuningJob]:
        warm = request.warm_start_config
        if warm is None:
            return []
        parents = []
        for entry in warm.parent_hyper_parameter_tuning_jobs:
            parent = get_or_raise(self.store, entry.hyper_parameter_tuning_job_name or "")
            if not parent.is_terminal:
                raise ValidationException(
                    f"The parent tuning job {parent.name} is in status {parent.status.value}; warm start needs "
                    "parents that are Completed, Stopped or Failed."
                )
            if parent.plan.objective.metric != plan.objective.metric:
                raise ValidationException(
                    f"The parent tuning job {parent.name} uses the objective metric {parent.plan.objective.metric}; "
                    f"warm start needs the same objective metric ({plan.objective.metric})."
                )
            parents.append(parent)
        return parents

    def recover_after_restart(self, training: Store[TrainingJob]) -> None:
        """Running tuning jobs end Failed; their children are the training store's records again (those that
        finished keep their results, running ones ended Failed with the training jobs)."""
        for job in self.store.values():
            with job.lock:
                for child in job.children:
                    child.training = training.find(child.training.name) or child.training
                for best in (job.parent_best,):
                    if best is not None:
                        best.training = training.find(best.training.name) or best.training
            if not job.is_terminal:
                job.finish(TuningJobStatus.FAILED, RESTART_REASON)
            self.store.changed(job.name)

    def describe_hyper_parameter_tuning_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return get_or_raise(self.store, str(params["HyperParameterTuningJobName"])).to_api()

    def list_hyper_parameter_tuning_jobs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        page, token = paginate(
            self.store.values(), {"SortBy": "Name", "SortOrder": "Ascending", **params}, _TUNING_LIST
        )
        return {"HyperParameterTuningJobSummaries": [job.summary() for job in page], "NextToken": token}

    def list_training_jobs_for_hyper_parameter_tuning_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        job = get_or_raise(self.store, str(params["HyperParameterTuningJobName"]))
        with job.lock:
            children = list(job.children)
        options = {"SortBy": "Name", "SortOrder": "Ascending", **params}
        if options["SortBy"] == "FinalObjectiveMetricValue":
            children = [c for c in children if c.finished and c.objective is not None]
        page, token = paginate(children, options, _CHILD_LIST)
        return {"TrainingJobSummaries": [child.to_api() for child in page], "NextToken": token}

    def stop_hyper_parameter_tuning_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        job = get_or_raise(self.store, str(params["HyperParameterTuningJobName"]))
        with job.lock:
            if job.status is not TuningJobStatus.IN_PROGRESS:
                raise ValidationException(
                    f"The request was rejected because the tuning job is in status {job.status.value}."
                )
            job.status, job.last_modified = TuningJobStatus.STOPPING, utcnow()
            job.stop_requested.set()
        return {}

    def delete_hyper_parameter_tuning_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        job = get_or_raise(self.store, str(params["HyperParameterTuningJobName"]))
        if not job.is_terminal:
            raise ValidationException(
                f"The tuning job {job.name} is in status {job.status.value} and cannot be deleted."
            )
        self.store.remove(job.name)
        self.tags.pop(job.arn, None)
        return {}


def _already_exists(name: str) -> ResourceInUse:
    return ResourceInUse(f"A hyperparameter tuning job with the name, {name}, already exists")
