"""Automatic tracking, as on AWS: every training, processing and transform job becomes a trial component.

``TrackedLauncher`` wraps a family's launcher (the composition root does it), so a job's component exists from its
Create call on: named ``<job-name>-aws-training-job`` (``-aws-processing-job``, ``-aws-transform-job``) with the
job's parameters and artifacts, and associated with the trial its ``ExperimentConfig`` names. Before any
Experiments read, :meth:`JobTracking.refresh` brings the components of running jobs up to date from their Describe
answer; when a training job ends, the metric series its ``MetricDefinitions`` capture is read from its log lines.
A pipeline execution's jobs are gathered into its ``PipelineExperimentConfig`` trial the same way.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

from infra.control_plane.core.durable.record_journal import RESTART_REASON
from infra.control_plane.core.errors import ServiceError
from infra.control_plane.experiments.experiment_catalog import ExperimentCatalog
from infra.control_plane.experiments.experiment_records import MetricSummary, TrialComponent
from infra.control_plane.experiments.metric_series import MetricPoint, MetricSeries
from infra.control_plane.training.builtin_metrics import escape_control_chars

logger = logging.getLogger(__name__)

_TERMINAL = {"Completed", "Failed", "Stopped"}
_LEADING_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class JobKind:
    suffix: str
    source_type: str
    detail_key: str  # the SourceDetail member and the Describe answer's prefix
    status_key: str
    start_key: str
    end_key: str


TRAINING = JobKind(
    "-aws-training-job",
    "SageMakerTrainingJob",
    "TrainingJob",
    "TrainingJobStatus",
    "TrainingStartTime",
    "TrainingEndTime",
)
PROCESSING = JobKind(
    "-aws-processing-job",
    "SageMakerProcessingJob",
    "ProcessingJob",
    "ProcessingJobStatus",
    "ProcessingStartTime",
    "ProcessingEndTime",
)
TRANSFORM = JobKind(
    "-aws-transform-job",
    "SageMakerTransformJob",
    "TransformJob",
    "TransformJobStatus",
    "TransformStartTime",
    "TransformEndTime",
)


@dataclass(frozen=True)
class PipelineJob:
    """A job a pipeline execution started, and the trial its ``PipelineExperimentConfig`` names."""

    experiment_name: str
    trial_name: str
    job_arn: str


class Job(Protocol):
    name: str
    arn: str

    def to_api(self) -> dict[str, Any]: ...


class Launcher(Protocol):
    def launch(self, job: Any) -> None: ...


LogLines = Callable[[str], Sequence[tuple[float, str]]]  # training job name -> (epoch seconds, line)


@dataclass
class _Tracked:
    kind: JobKind
    describe: Callable[[], dict[str, Any]]


class JobTracking:
    def __init__(
        self,
        catalog: ExperimentCatalog,
        series: MetricSeries,
        log_lines: LogLines,
        pipeline_jobs: Callable[[], Sequence[PipelineJob]] = lambda: (),
    ) -> None:
        self._catalog, self._series, self._log_lines = catalog, series, log_lines
        self._pipeline_jobs = pipeline_jobs
        self._pending: dict[str, _Tracked] = {}  # component name -> its running job
        self._by_arn: dict[str, str] = {}  # job ARN (lower-case) -> component name
        self._gathered: set[tuple[str, str]] = set()
        self._lock = threading.RLock()
        self._recover_stored_components()
        catalog.on_read(self.refresh)

    def _recover_stored_components(self) -> None:
        """After a stack restart (the catalog starts from its stored records): know the jobs' components again, and
        end those of jobs that were running, as their jobs end (Failed, with the restart reason)."""
        for component in self._catalog.components.values():
            source = component.source or {}
            if not source.get("SourceArn"):
                continue
            self._by_arn[str(source["SourceArn"]).lower()] = component.name
            status = (component.status_info or {}).get("PrimaryStatus")
            if status is not None and status not in _TERMINAL:
                with component.lock:
                    component.status_info = {"PrimaryStatus": "Failed", "Message": RESTART_REASON}
                    component.end_time = component.end_time or datetime.now(tz=UTC)
                    component.touch()
                self._catalog.components.changed(component.name)

    def gather_from(self, pipeline_jobs: Callable[[], Sequence[PipelineJob]]) -> None:
        """Where the pipeline executions' jobs come from (set once the pipeline engine exists)."""
        self._pipeline_jobs = pipeline_jobs

    def launcher(self, inner: Launcher, kind: JobKind) -> TrackedLauncher:
        return TrackedLauncher(inner, self, kind)

    def job_created(self, kind: JobKind, job: Job) -> None:
        described = job.to_api()
        name = job.name + kind.suffix
        arn = self._catalog.arn("experiment-trial-component", name)
        component = TrialComponent(name, arn, source={"SourceArn": job.arn, "SourceType": kind.source_type})
        _fill(component, kind, described)
        config = described.get("ExperimentConfig") or {}
        component.display_name = config.get("TrialComponentDisplayName")
        with self._lock:
            self._catalog.add_component(component, [])
            self._series.alias(job.arn, arn)
            self._by_arn[job.arn.lower()] = name
            self._pending[name] = _Tracked(kind, job.to_api)
        self._associate(name, config, job.name)

    def _associate(self, name: str, config: Mapping[str, Any], job_name: str) -> None:
        experiment, trial = config.get("ExperimentName"), config.get("TrialName")
        if not experiment and not trial:
            return
        if experiment:
            self._catalog.ensure_trial(str(trial or job_name), str(experiment))
        if self._catalog.trials.find(str(trial or job_name)) is not None:
            self._catalog.associate(name, str(trial or job_name), strict=False)

    def refresh(self) -> None:
        with self._lock:
            for name, tracked in list(self._pending.items()):
                self._refresh_one(name, tracked)
            self._gather_pipeline_jobs()

    def _refresh_one(self, name: str, tracked: _Tracked) -> None:
        component = self._catalog.components.find(name)
        if component is None:
            self._pending.pop(name, None)  # deleted by the user
            return
        try:
            described = tracked.describe()
        except ServiceError:
            self._pending.pop(name, None)
            return
        with component.lock:
            _fill(component, tracked.kind, described)
            component.touch()
        if _text(described.get(tracked.kind.status_key)) in _TERMINAL:
            if tracked.kind is TRAINING:
                self._training_metrics(component, described)
            self._pending.pop(name, None)

    def _training_metrics(self, component: TrialComponent, described: Mapping[str, Any]) -> None:
        definitions = (described.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
        job_arn = str(described.get("TrainingJobArn"))
        found = _series(self._log_lines(str(described.get("TrainingJobName"))), definitions)
        if not found:  # no log line matched: the final values are the series
            for metric in described.get("FinalMetricDataList") or []:
                when = metric.get("Timestamp") or datetime.now(tz=UTC)
                point = MetricPoint(when.timestamp(), None, float(metric["Value"]))
                found.setdefault(str(metric["MetricName"]), []).append(point)
        with component.lock:
            for metric, points in found.items():
                summary = component.metrics.setdefault(metric, MetricSummary(metric, source_arn=job_arn))
                for point in points:
                    summary.add(point.value, datetime.fromtimestamp(point.timestamp, tz=UTC))
        for metric, points in found.items():
            self._series.add(component.arn, metric, points)

    def _gather_pipeline_jobs(self) -> None:
        for link in self._pipeline_jobs():
            name = self._by_arn.get(link.job_arn.lower())
            if name is None or (name, link.trial_name) in self._gathered:
                continue
            self._catalog.ensure_trial(link.trial_name, link.experiment_name)
            self._catalog.associate(name, link.trial_name, strict=False)
            self._gathered.add((name, link.trial_name))


class TrackedLauncher:
    """A family's launcher that first creates the job's trial component (tracking never fails a job)."""

    def __init__(self, inner: Launcher, tracking: JobTracking, kind: JobKind) -> None:
        self._inner, self._tracking, self._kind = inner, tracking, kind

    def launch(self, job: Any) -> None:
        try:
            self._tracking.job_created(self._kind, job)
        except Exception:
            logger.exception("could not create the trial component of job %s", job.name)
        self._inner.launch(job)


def _text(value: Any) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value or "")


def _parameter(value: Any) -> dict[str, Any]:
    try:
        return {"NumberValue": float(value)} if not isinstance(value, bool) else {"StringValue": str(value).lower()}
    except (TypeError, ValueError):
        return {"StringValue": str(value)}


def _fill(component: TrialComponent, kind: JobKind, described: Mapping[str, Any]) -> None:
    """The component's fields from the job's Describe answer (what AWS shows for a job's trial component)."""
    status = _text(described.get(kind.status_key))
    reason = described.get("FailureReason")
    component.status_info = {"PrimaryStatus": status, **({"Message": str(reason)} if reason else {})}
    component.start_time = described.get(kind.start_key) or component.start_time
    component.end_time = described.get(kind.end_key) or component.end_time
    component.source_detail = {"SourceArn": component.source["SourceArn"] if component.source else None}
    component.source_detail[kind.detail_key] = dict(described)
    if kind is TRAINING:
        _fill_training(component, described)
    elif kind is PROCESSING:
        _fill_processing(component, described)
    else:
        _fill_transform(component, described)


def _resources(component: TrialComponent, resources: Mapping[str, Any]) -> None:
    for key in ("InstanceType", "InstanceCount", "VolumeSizeInGB"):
        if resources.get(key) is not None:
            component.parameters[f"SageMaker.{key}"] = _parameter(resources[key])


def _fill_training(component: TrialComponent, described: Mapping[str, Any]) -> None:
    for key, value in (described.get("HyperParameters") or {}).items():
        component.parameters[key] = _parameter(value)
    _resources(component, described.get("ResourceConfig") or {})
    image = (described.get("AlgorithmSpecification") or {}).get("TrainingImage")
    if image:
        component.input_artifacts["SageMaker.ImageUri"] = {"Value": str(image)}
    for channel in described.get("InputDataConfig") or []:
        source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        if source.get("S3Uri"):
            artifact = {"Value": str(source["S3Uri"])}
            if channel.get("ContentType"):
                artifact["MediaType"] = str(channel["ContentType"])
            component.input_artifacts[str(channel["ChannelName"])] = artifact
    model = (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if model:
        component.output_artifacts["SageMaker.ModelArtifact"] = {"Value": str(model)}


def _fill_processing(component: TrialComponent, described: Mapping[str, Any]) -> None:
    _resources(component, (described.get("ProcessingResources") or {}).get("ClusterConfig") or {})
    image = (described.get("AppSpecification") or {}).get("ImageUri")
    if image:
        component.input_artifacts["SageMaker.ImageUri"] = {"Value": str(image)}
    for item in described.get("ProcessingInputs") or []:
        uri = (item.get("S3Input") or {}).get("S3Uri")
        if uri:
            component.input_artifacts[str(item["InputName"])] = {"Value": str(uri)}
    for item in (described.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
        uri = (item.get("S3Output") or {}).get("S3Uri")
        if uri:
            component.output_artifacts[str(item["OutputName"])] = {"Value": str(uri)}


def _fill_transform(component: TrialComponent, described: Mapping[str, Any]) -> None:
    _resources(component, described.get("TransformResources") or {})
    if described.get("ModelName"):
        component.parameters["SageMaker.ModelName"] = {"StringValue": str(described["ModelName"])}
    source = ((described.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource") or {}
    if source.get("S3Uri"):
        component.input_artifacts["SageMaker.TransformInput"] = {"Value": str(source["S3Uri"])}
    output = (described.get("TransformOutput") or {}).get("S3OutputPath")
    if output:
        component.output_artifacts["SageMaker.TransformOutput"] = {"Value": str(output)}


def _series(
    lines: Sequence[tuple[float, str]], definitions: Sequence[Mapping[str, Any]]
) -> dict[str, list[MetricPoint]]:
    """Every value each ``MetricDefinitions`` regex captures in the job's log lines, in time order."""
    compiled = []
    for definition in definitions:
        try:
            compiled.append((str(definition["Name"]), re.compile(str(definition["Regex"]))))
        except re.error:
            continue
    found: dict[str, list[MetricPoint]] = {}
    for timestamp, line in lines:
        escaped = escape_control_chars(line)
        for name, pattern in compiled:
            match = pattern.search(escaped) or pattern.search(line)
            if match is None or not match.groups() or match.group(1) is None:
                continue
            number = _LEADING_FLOAT.match(match.group(1))
            if number is not None:
                points = found.setdefault(name, [])
                points.append(MetricPoint(timestamp, len(points), float(number.group(0))))  # step: the ordinal
    return found
