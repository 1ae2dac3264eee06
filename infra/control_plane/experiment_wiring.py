"""Wires the Experiments room to the other families: Search's record providers and job tracking.

Nothing in the families knows about Experiments: Search reads their Describe answers, and job tracking wraps their
launchers (docs/experiments.md#what-is-tracked-automatically).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from moto.backends import get_backend

from infra.control_plane.core.errors import ServiceError
from infra.control_plane.experiments.job_tracking import PipelineJob
from infra.control_plane.experiments.search_api import RecordProvider

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_PIPELINE_JOB_KINDS = ("TrainingJob", "ProcessingJob", "TransformJob")

Describe = Callable[[Mapping[str, Any]], dict[str, Any]]


def _provider(
    named: Callable[[], Iterable[Any]],
    describe: Describe,
    key: str,
    tags: Mapping[str, list[dict[str, str]]],
    by_arn: bool = False,
) -> RecordProvider:
    """Records of one family: each resource's Describe answer with its ``Tags``."""

    def records() -> list[Mapping[str, Any]]:
        out: list[Mapping[str, Any]] = []
        for resource in named():
            try:
                record = describe({key: resource.arn if by_arn else resource.name})
            except ServiceError:
                continue  # deleted meanwhile
            record["Tags"] = list(tags.get(resource.arn, []))
            out.append(record)
        return out

    return records


def search_providers(backend: Any) -> dict[str, RecordProvider]:
    """``backend`` is the composition root's ``SageMakerBackend`` (not imported: it imports this module)."""
    b = backend
    return {
        "TrainingJob": _provider(
            b.training_jobs.store.values, b.training_jobs.describe_training_job, "TrainingJobName", b.training_jobs.tags
        ),
        "Model": _provider(b.models.store.values, b.models.describe_model, "ModelName", b.models.tags),
        "Endpoint": _provider(
            b.endpoints.store.values, b.endpoints.describe_endpoint, "EndpointName", b.endpoints.tags
        ),
        "ModelPackage": _provider(
            b.model_packages.packages.values,
            b.model_packages.describe_model_package,
            "ModelPackageName",
            b.model_packages.tags,
            by_arn=True,
        ),
        "ModelPackageGroup": _provider(
            b.model_packages.groups.values,
            b.model_packages.describe_model_package_group,
            "ModelPackageGroupName",
            b.model_packages.tags,
        ),
        "Pipeline": _provider(
            b.pipelines.store.values, b.pipelines.describe_pipeline, "PipelineName", b.pipelines.tags
        ),
        "PipelineExecution": _provider(
            lambda: list(b.pipelines.executions.values()),
            b.pipelines.describe_pipeline_execution,
            "PipelineExecutionArn",
            b.pipelines.tags,
            by_arn=True,
        ),
        "HyperParameterTuningJob": _provider(
            b.tuning_jobs.store.values,
            b.tuning_jobs.describe_hyper_parameter_tuning_job,
            "HyperParameterTuningJobName",
            b.tuning_jobs.tags,
        ),
    }


def training_log_lines(account_id: str, region: str) -> Callable[[str], list[tuple[float, str]]]:
    """A training job's log lines (epoch seconds, text) across its hosts' streams, in time order."""

    def lines(job_name: str) -> list[tuple[float, str]]:
        group = get_backend("logs")[account_id][region].groups.get(TRAINING_LOG_GROUP)
        if group is None:
            return []
        found = [
            (event.timestamp / 1000.0, str(event.message))
            for stream_name, stream in list(group.streams.items())
            if stream_name.startswith(job_name + "/")
            for event in list(stream.events)
        ]
        return sorted(found, key=lambda item: item[0])

    return lines


def pipeline_jobs(backend: Any) -> Callable[[], list[PipelineJob]]:
    """The jobs of every pipeline execution that has a ``PipelineExperimentConfig`` (a Tuning step: its trainings)."""

    def jobs() -> list[PipelineJob]:
        out: list[PipelineJob] = []
        for execution in list(backend.pipelines.executions.values()):
            experiment, trial = execution.experiment.get("ExperimentName"), execution.experiment.get("TrialName")
            if not experiment or not trial:
                continue
            for step in list(execution.steps.values()):
                for arn in _step_job_arns(backend, step.metadata):
                    out.append(PipelineJob(str(experiment), str(trial), arn))
        return out

    return jobs


def _step_job_arns(backend: Any, metadata: Mapping[str, Any]) -> list[str]:
    arns = [str(metadata[k]["Arn"]) for k in _PIPELINE_JOB_KINDS if isinstance(metadata.get(k), Mapping)]
    tuning = metadata.get("TuningJob")
    if isinstance(tuning, Mapping) and tuning.get("Arn"):
        job = backend.tuning_jobs.store.find(str(tuning["Arn"]).rsplit("/", 1)[-1])
        arns += [child.training.arn for child in list(job.children)] if job is not None else []
    return arns
