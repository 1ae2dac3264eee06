"""Training jobs: the resource, its status model and the Create/Describe/List/Stop handlers."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from infra.control_plane.core.api_shapes import DEFAULT_MAX_RUNTIME_SECONDS, parse_request
from infra.control_plane.core.durable.record_codec import TRANSIENT
from infra.control_plane.core.durable.record_journal import RESTART_REASON
from infra.control_plane.core.errors import ResourceInUse, ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.quotas import QuotaLedger
from infra.control_plane.core.resource_helpers import arn_for, get_or_raise, not_found, tags_from, utcnow
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.training.builtin_metrics import builtin_metric_definitions
from infra.control_plane.training.training_request import CreateTrainingJobRequest
from infra.control_plane.training.warm_pools import WarmPool, WarmPools, check_keep_alive


class TrainingJobStatus(str, enum.Enum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


class SecondaryStatus(str, enum.Enum):
    STARTING = "Starting"
    DOWNLOADING = "Downloading"
    TRAINING = "Training"
    UPLOADING = "Uploading"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"


_MESSAGES = {
    SecondaryStatus.STARTING: "Starting the training job",
    SecondaryStatus.DOWNLOADING: "Downloading input data",
    SecondaryStatus.TRAINING: "Training image download completed. Training in progress.",
    SecondaryStatus.UPLOADING: "Uploading generated training model",
    SecondaryStatus.COMPLETED: "Training job completed",
    SecondaryStatus.FAILED: "Training job failed",
    SecondaryStatus.STOPPING: "Stopping the training job",
    SecondaryStatus.STOPPED: "Training job stopped",
    SecondaryStatus.MAX_RUNTIME_EXCEEDED: "Training job stopped: MaxRuntimeInSeconds exceeded",
}
_TERMINAL = {TrainingJobStatus.COMPLETED, TrainingJobStatus.FAILED, TrainingJobStatus.STOPPED}


@dataclass
class TrainingJob:
    name: str
    arn: str
    request: CreateTrainingJobRequest  # what the executor runs
    params: Mapping[str, Any]  # the validated request as sent: echoed by Describe, read by nothing else
    creation_time: datetime = field(default_factory=utcnow)
    status: TrainingJobStatus = TrainingJobStatus.IN_PROGRESS
    secondary_status: SecondaryStatus = SecondaryStatus.STARTING
    transitions: list[dict[str, Any]] = field(default_factory=list)
    failure_reason: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    last_modified: datetime = field(default_factory=utcnow)
    final_metrics: list[dict[str, Any]] = field(default_factory=list)
    model_artifacts: str | None = None
    warm_pool: WarmPool | None = None  # ResourceConfig.KeepAlivePeriodInSeconds > 0
    stop_requested: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # called by the executor once the job has ended (outside its lock): the warm pool's next state
    on_end: Callable[[TrainingJob], None] | None = field(default=None, metadata=TRANSIENT)

    def __post_init__(self) -> None:
        self.transitions.append(self._transition(SecondaryStatus.STARTING, self.creation_time))

    @staticmethod
    def _transition(status: SecondaryStatus, when: datetime) -> dict[str, Any]:
        return {"Status": status, "StartTime": when, "StatusMessage": _MESSAGES[status]}

    @property
    def is_terminal(self) -> bool:
        return self.status in _TERMINAL

    def advance(self, secondary: SecondaryStatus, status: TrainingJobStatus | None = None) -> None:
        """Record a secondary-status transition (closing the previous one) and optionally a new status."""
        with self.lock:
            now = utcnow()
            if self.transitions and "EndTime" not in self.transitions[-1]:
                self.transitions[-1]["EndTime"] = now
            self.transitions.append(self._transition(secondary, now))
            self.secondary_status = secondary
            if status is not None:
                self.status = status
            if status in _TERMINAL:
                self.transitions[-1]["EndTime"] = now
                self.end_time = now
            self.last_modified = now

    def to_api(self) -> dict[str, Any]:
        with self.lock:
            request = self.params
            body = {key: request.get(key) for key in _ECHOED}
            body.update(
                TrainingJobName=self.name,
                TrainingJobArn=self.arn,
                # AWS describes KmsKeyId "" when none was set; the SDK's Estimator.attach reads the key.
                OutputDataConfig={"KmsKeyId": "", **(request.get("OutputDataConfig") or {})},
                TrainingJobStatus=self.status,
                SecondaryStatus=self.secondary_status,
                FailureReason=self.failure_reason,
                AlgorithmSpecification=self._algorithm_specification(),
                StoppingCondition=request.get("StoppingCondition")
                or {"MaxRuntimeInSeconds": DEFAULT_MAX_RUNTIME_SECONDS},
                EnableNetworkIsolation=bool(request.get("EnableNetworkIsolation", False)),
                EnableInterContainerTrafficEncryption=bool(request.get("EnableInterContainerTrafficEncryption")),
                EnableManagedSpotTraining=bool(request.get("EnableManagedSpotTraining", False)),
                CreationTime=self.creation_time,
                TrainingStartTime=self.start_time,
                TrainingEndTime=self.end_time,
                LastModifiedTime=self.last_modified,
                SecondaryStatusTransitions=[dict(t) for t in self.transitions],
                FinalMetricDataList=list(self.final_metrics) or None,
                ModelArtifacts={"S3ModelArtifacts": self.model_artifacts} if self.model_artifacts else None,
                **self._durations(),
            )
            if self.warm_pool is not None:
                body["WarmPoolStatus"] = self.warm_pool.to_api()
            return body

    def _algorithm_specification(self) -> dict[str, Any]:
        spec = dict(self.params.get("AlgorithmSpecification") or {})
        if not spec.get("MetricDefinitions") and spec.get("TrainingImage"):
            builtin = builtin_metric_definitions(str(spec["TrainingImage"]))
            spec["MetricDefinitions"] = builtin or None
        return spec

    def _durations(self) -> dict[str, int | None]:
        if self.start_time is None or self.end_time is None:
            return {"TrainingTimeInSeconds": None, "BillableTimeInSeconds": None}
        seconds = max(1, int((self.end_time - self.start_time).total_seconds()))
        return {"TrainingTimeInSeconds": seconds, "BillableTimeInSeconds": seconds}

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "TrainingJobName": self.name,
                "TrainingJobArn": self.arn,
                "CreationTime": self.creation_time,
                "TrainingEndTime": self.end_time,
                "LastModifiedTime": self.last_modified,
                "TrainingJobStatus": self.status,
                "SecondaryStatus": self.secondary_status,
                **({"WarmPoolStatus": self.warm_pool.to_api()} if self.warm_pool is not None else {}),
            }


_ECHOED = (
    "HyperParameters",
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "VpcConfig",
    "CheckpointConfig",
    "Environment",
    "DebugHookConfig",
    "ExperimentConfig",
    "TensorBoardOutputConfig",
    "ProfilerConfig",
    "RetryStrategy",
)

_LIST_SPEC: ListSpec[TrainingJob] = ListSpec(
    name=lambda job: job.name,
    creation_time=lambda job: job.creation_time,
    status=lambda job: job.status.value,
    last_modified=lambda job: job.last_modified,
)


class TrainingLauncher(Protocol):
    def launch(self, job: TrainingJob) -> None: ...


class TrainingJobs:
    """Handlers for the training-job operations of one account/region."""

    def __init__(
        self,
        account_id: str,
        region: str,
        launcher: TrainingLauncher,
        quotas: QuotaLedger | None = None,
        release_warm_pool: Callable[[str], None] | None = None,
    ) -> None:
        self._account_id = account_id
        self._region = region
        self._launcher = launcher
        self.store: Store[TrainingJob] = Store(
            "training-job", not_found("Requested resource not found.", ValidationException), TrainingJob
        )
        self._quotas = quotas or QuotaLedger()
        self._quotas.register(
            "training",
            lambda: [j.request.resource_config.instance_count for j in self.store.values() if not j.is_terminal],
        )
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("training-job-tags", list)
        self.warm_pools = WarmPools(self.store.values, release_warm_pool or (lambda pool: None), self.store.changed)

    def create_training_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["TrainingJobName"])
        arn = arn_for("training-job", name, self._account_id, self._region)
        request = parse_request(CreateTrainingJobRequest, params)
        _check_create(request)
        self._quotas.check_job("training", request.resource_config.instance_count)
        job = TrainingJob(name=name, arn=arn, request=request, params=dict(params), on_end=self._job_ended)
        self.store.add(name, job, _already_exists(arn))
        self.warm_pools.assign(job)
        self.tags[arn] = tags_from(params)
        self._launcher.launch(job)
        return {"TrainingJobArn": arn}

    def describe_training_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return get_or_raise(self.store, str(params["TrainingJobName"])).to_api()

    def list_training_jobs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        jobs = self.store.values()
        if params.get("WarmPoolStatusEquals"):
            wanted = str(params["WarmPoolStatusEquals"])
            jobs = [job for job in jobs if job.warm_pool is not None and job.warm_pool.status.value == wanted]
        page, token = paginate(jobs, params, _LIST_SPEC)
        return {"TrainingJobSummaries": [job.summary() for job in page], "NextToken": token}

    def update_training_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Only ``ResourceConfig.KeepAlivePeriodInSeconds`` (the warm pool) is updated locally; profiler and
        remote-debug settings are refused (docs/performance.md#warm-pools)."""
        job = get_or_raise(self.store, str(params["TrainingJobName"]))
        unsupported = sorted(key for key in params if key not in ("TrainingJobName", "ResourceConfig"))
        if unsupported:
            raise ValidationException(f"UpdateTrainingJob: {', '.join(unsupported)} cannot be updated locally.")
        resources = params.get("ResourceConfig") or {}
        if "KeepAlivePeriodInSeconds" not in resources:
            raise ValidationException("UpdateTrainingJob needs ResourceConfig.KeepAlivePeriodInSeconds.")
        self.warm_pools.update_keep_alive(job, int(resources["KeepAlivePeriodInSeconds"]))
        self.store.changed(job.name)
        return {"TrainingJobArn": job.arn}

    def _job_ended(self, job: TrainingJob) -> None:
        self.warm_pools.job_ended(job, completed=job.status is TrainingJobStatus.COMPLETED)
        self.store.changed(job.name)

    def recover_after_restart(self) -> None:
        """Jobs running when the stack stopped end Failed (Stopped when a stop was asked) with the restart reason."""
        self.warm_pools.terminate_after_restart(self.store.values())
        for job in self.store.values():
            if job.is_terminal:
                continue
            with job.lock:
                if job.status is TrainingJobStatus.STOPPING:
                    job.advance(SecondaryStatus.STOPPED, TrainingJobStatus.STOPPED)
                else:
                    job.failure_reason = RESTART_REASON
                    job.advance(SecondaryStatus.FAILED, TrainingJobStatus.FAILED)
            self.store.changed(job.name)

    def stop_training_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        job = get_or_raise(self.store, str(params["TrainingJobName"]))
        with job.lock:
            if job.status != TrainingJobStatus.IN_PROGRESS:
                raise ValidationException(
                    f"The request was rejected because the training job is in status {job.status.value}."
                )
            job.advance(SecondaryStatus.STOPPING, TrainingJobStatus.STOPPING)
            job.stop_requested.set()
        return {}


def _already_exists(arn: str) -> Any:
    def build(name: str) -> ResourceInUse:
        return ResourceInUse(
            "Training job names must be unique within an AWS account and region, and a training job with "
            f"this name already exists ({arn})"
        )

    return build


def _check_create(request: CreateTrainingJobRequest) -> None:
    spec = request.algorithm_specification
    if not spec.training_image and not spec.algorithm_name:
        raise ValidationException("Either TrainingImage or AlgorithmName must be specified.")
    if spec.algorithm_name and not spec.training_image:
        raise ValidationException("AlgorithmName (marketplace algorithms) is not supported by the local stack.")
    check_keep_alive(request.resource_config.keep_alive_period_in_seconds)
    names = [channel.channel_name for channel in request.input_data_config]
    if len(names) != len(set(names)):
        raise ValidationException("Channel names must be unique within InputDataConfig.")
