"""The CreateProcessingJob request of one monitoring execution.

Data and model quality run the analyzer; the runner stages what its job contract asks for
(``docs/model-monitor.md``) as processing inputs:

* the capture files of every ``<endpoint>/<variant>/yyyy/mm/dd/hh`` folder that overlaps the window, each at
  ``<EndpointInput.LocalPath>/<endpoint>/<variant>/yyyy/mm/dd/hh`` (the endpoint's buffered captures are flushed
  first, so a ``NOW`` run sees the traffic that preceded it);
* the baseline ``statistics.json`` / ``constraints.json`` (``StatisticsResource`` / ``ConstraintsResource``, else
  the ``BaseliningJobName`` job's output) under ``/opt/ml/processing/baseline/{stats,constraints}``;
* the ground truth prefix (model quality) at ``/opt/ml/processing/groundtruth``; user scripts under
  ``/opt/ml/processing/code/{preprocessing,postprocessing}``;

with the environment ``dataset_format``, ``dataset_source``, ``output_path``, ``start_time``, ``end_time``,
``sagemaker_endpoint_name``, ``sagemaker_monitoring_schedule_name``, ``publish_cloudwatch_metrics``,
``baseline_*`` (and ``analysis_type``/``problem_type``/attributes for model quality); the definition's
``Environment`` is applied last. The output goes to ``<S3Uri>/<endpoint>/<schedule>/yyyy/mm/dd/hh`` of the
scheduled time. Bias and explainability run a Clarify job over the staged window (``monitoring_clarify_run.py``).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.monitoring.clarify.monitoring_clarify import CLARIFY_TYPES
from infra.control_plane.monitoring.clarify.monitoring_clarify_run import (
    ClarifyParts,
    ClarifyRunState,
    clarify_request,
    s3_input,
)
from infra.control_plane.monitoring.monitoring_captures import CaptureSource
from infra.control_plane.monitoring.monitoring_definitions import MonitoringJob, MonitoringType
from infra.control_plane.monitoring.monitoring_time import hours_between, window_text
from infra.control_plane.processing.processing_jobs import ProcessingJobs

logger = logging.getLogger(__name__)

__all__ = ["ExecutionContext", "ExecutionPlan", "ExecutionSetupError", "Window", "processing_request"]

BASELINE_STATS_PATH = "/opt/ml/processing/baseline/stats"
BASELINE_CONSTRAINTS_PATH = "/opt/ml/processing/baseline/constraints"
GROUND_TRUTH_PATH = "/opt/ml/processing/groundtruth"
PREPROCESSOR_PATH = "/opt/ml/processing/code/preprocessing"
POSTPROCESSOR_PATH = "/opt/ml/processing/code/postprocessing"
CAPTURE_FORMAT = {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}}
_HOUR_FOLDER = re.compile(r"^(?P<variant>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/")
_NO_BATCH = "BatchTransformInput monitoring is not run by the Sagestack local stack yet; monitor an endpoint."


class ExecutionSetupError(Exception):
    """The execution cannot start its processing job; the message becomes the FailureReason."""


@dataclass(frozen=True)
class ExecutionContext:
    account_id: str
    region: str
    s3: S3Access
    processing_jobs: ProcessingJobs
    captures: CaptureSource
    processing_work_root: Path  # where the processing executor keeps each job's host directories


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ExecutionPlan:
    """What one execution runs: the job definition, its processing job's name, the schedule, the window."""

    job: MonitoringJob
    job_name: str
    schedule: str
    scheduled_time: datetime
    window: Window


def processing_request(ctx: ExecutionContext, plan: ExecutionPlan) -> tuple[dict[str, Any], ClarifyRunState | None]:
    """The request, and for bias/explainability what the conclusion needs (raises the setup errors)."""
    if plan.job.endpoint_input is None:
        raise ExecutionSetupError(_NO_BATCH)
    if plan.job.monitoring_type in CLARIFY_TYPES:
        return _clarify_request(ctx, plan)
    return _AnalyzerRequest(ctx, plan).build(), None


def _clarify_request(ctx: ExecutionContext, plan: ExecutionPlan) -> tuple[dict[str, Any], ClarifyRunState]:
    """Bias / explainability: the window staged as a Clarify job (``monitoring_clarify``)."""
    job = plan.job
    endpoint = str(job.endpoint_name)
    destination = ctx.captures.destination(endpoint)
    if destination is None:
        raise ExecutionSetupError(f"ClientError: Endpoint {endpoint} does not exist or has no DataCaptureConfig.")
    ctx.captures.flush(endpoint)
    baseline = job.baseline
    constraints = baseline.constraints_uri
    if not constraints and baseline.baselining_job_name:
        constraints = f"{baselining_output(ctx, baseline.baselining_job_name)}/analysis.json"
    parts = ClarifyParts(
        job=job,
        job_name=plan.job_name,
        schedule=plan.schedule,
        scheduled_time=plan.scheduled_time,
        window=(plan.window.start, plan.window.end),
        capture_root=S3Location.parse(destination).child(endpoint),
        baseline_uri=str(constraints) if constraints else None,
        endpoint_variant=ctx.captures.production_variant(endpoint),
    )
    return clarify_request(ctx.s3, parts)


def baselining_output(ctx: ExecutionContext, name: str) -> str:
    """The S3 URI of the first output of the baselining processing job ``name``."""
    found = ctx.processing_jobs.store.find(name)
    if found is None:
        raise ExecutionSetupError(f"ClientError: baselining job {name} does not exist.")
    outputs = found.request.processing_output_config.outputs
    uris = [o.s3_output.s3_uri for o in outputs if o.s3_output is not None]
    if not uris:
        raise ExecutionSetupError(f"ClientError: baselining job {name} has no S3 output to read a baseline from.")
    return str(uris[0]).rstrip("/")


class _AnalyzerRequest:
    """Data or model quality: the analyzer's processing job over the window's capture files."""

    def __init__(self, ctx: ExecutionContext, plan: ExecutionPlan) -> None:
        self.ctx = ctx
        self.plan = plan
        self.job = plan.job
        self.endpoint = str(plan.job.endpoint_name)

    def build(self) -> dict[str, Any]:
        job = self.job
        inputs = self._capture_inputs()
        environment = self._environment()
        inputs += self._baseline_inputs(environment)
        inputs += self._script_inputs(environment)
        if job.monitoring_type is MonitoringType.MODEL_QUALITY:
            inputs += self._model_quality(environment)
        environment.update(job.environment)
        hour_path = self.plan.scheduled_time.strftime("%Y/%m/%d/%H")
        output_uri = f"{job.output.s3_uri.rstrip('/')}/{self.endpoint}/{self.plan.schedule}/{hour_path}"
        request: dict[str, Any] = {
            "ProcessingJobName": self.plan.job_name,
            "ProcessingInputs": inputs,
            "ProcessingOutputConfig": self._output_config(output_uri),
            "ProcessingResources": {"ClusterConfig": job.cluster.wire()},
            "AppSpecification": self._app_specification(),
            "Environment": environment,
            "StoppingCondition": {"MaxRuntimeInSeconds": job.stopping.max_runtime_in_seconds},
            "RoleArn": job.role,
        }
        if job.network is not None:
            request["NetworkConfig"] = job.network.wire()
        return request

    def _app_specification(self) -> dict[str, Any]:
        app = self.job.app
        sent = {
            "ImageUri": app.image_uri,
            "ContainerEntrypoint": list(app.container_entrypoint or ()),
            "ContainerArguments": list(app.container_arguments or ()),
        }
        return {key: value for key, value in sent.items() if value}

    def _environment(self) -> dict[str, str]:
        start_text, end_text = window_text(self.plan.window.start, self.plan.window.end)
        return {
            "dataset_format": json.dumps(CAPTURE_FORMAT),
            "dataset_source": self._local_root,
            "output_path": self.job.output.local_path,
            "start_time": start_text,
            "end_time": end_text,
            "sagemaker_endpoint_name": self.endpoint,
            "sagemaker_monitoring_schedule_name": self.plan.schedule,
            "publish_cloudwatch_metrics": "Enabled",
        }

    def _output_config(self, output_uri: str) -> dict[str, Any]:
        output = self.job.output
        return {
            "Outputs": [
                {
                    "OutputName": "result",
                    "S3Output": {
                        "S3Uri": output_uri,
                        "LocalPath": output.local_path,
                        "S3UploadMode": output.s3_upload_mode,
                    },
                }
            ],
            **({"KmsKeyId": self.job.output_kms_key} if self.job.output_kms_key else {}),
        }

    def _capture_inputs(self) -> list[dict[str, Any]]:
        endpoint = self.endpoint
        destination = self.ctx.captures.destination(endpoint)
        if destination is None:
            raise ExecutionSetupError(
                f"ClientError: Endpoint {endpoint} does not exist or has no DataCaptureConfig: there is no captured "
                "data to monitor. Deploy the endpoint with data capture enabled."
            )
        self.ctx.captures.flush(endpoint)
        try:
            root = S3Location.parse(destination).child(endpoint)
            prefix = root.key.rstrip("/") + "/"
            keys = self.ctx.s3.list_keys(S3Location(root.bucket, prefix))
        except S3AccessError as exc:
            raise ExecutionSetupError(
                f"ClientError: cannot list the captured data of {endpoint} under {destination}: {exc}"
            ) from exc
        folders = self._window_folders([key[len(prefix) :] for key, _ in keys])
        local_root = self._local_root.rstrip("/")
        return [
            s3_input(
                f"endpoint_input_{index}",
                f"s3://{root.bucket}/{prefix}{variant}/{hour}/",
                f"{local_root}/{endpoint}/{variant}/{hour}",
            )
            for index, (variant, hour) in enumerate(sorted(folders), start=1)
        ]

    def _window_folders(self, relative_keys: list[str]) -> list[tuple[str, str]]:
        """``(variant, yyyy/mm/dd/hh)`` of the capture folders in the window (one empty folder if there is none)."""
        window = self.plan.window
        wanted = {hour.strftime("%Y/%m/%d/%H") for hour in hours_between(window.start, window.end)}
        folders: list[tuple[str, str]] = []
        variants: list[str] = []
        for key in relative_keys:
            match = _HOUR_FOLDER.match(key)
            if match is None:
                continue
            variant, hour = match.group("variant"), "/".join(match.group("y", "m", "d", "h"))
            if variant not in variants:
                variants.append(variant)
            if hour in wanted and (variant, hour) not in folders:
                folders.append((variant, hour))
        if not folders:  # an empty window: stage one empty folder so the analyzer reports "no data" itself
            folders = [(variants[0] if variants else "AllTraffic", min(wanted))]
        return folders

    def _baseline_inputs(self, environment: dict[str, str]) -> list[dict[str, Any]]:
        baseline = self.job.baseline
        statistics, constraints = baseline.statistics_uri, baseline.constraints_uri
        if baseline.baselining_job_name and not (statistics and constraints):
            job_output = baselining_output(self.ctx, baseline.baselining_job_name)
            statistics = statistics or (f"{job_output}/statistics.json" if self._is_data_quality else None)
            constraints = constraints or f"{job_output}/constraints.json"
        inputs = []
        for uri, name, path, variable in (
            (statistics, "baseline", BASELINE_STATS_PATH, "baseline_statistics"),
            (constraints, "constraints", BASELINE_CONSTRAINTS_PATH, "baseline_constraints"),
        ):
            if not uri:
                continue
            self._require_object(str(uri), variable.replace("_", " "))
            inputs.append(s3_input(name, str(uri), path))
            environment[variable] = f"{path}/{PurePosixPath(str(uri)).name}"
        if not constraints and self._is_data_quality:
            raise ExecutionSetupError(
                "ClientError: the job definition has no baseline constraints (ConstraintsResource or "
                "BaseliningJobName): a data quality execution compares the window with a baseline."
            )
        return inputs

    @property
    def _local_root(self) -> str:
        """``EndpointInput.LocalPath``, where the captures are staged."""
        return self.job.endpoint_input.local_path if self.job.endpoint_input else ""

    @property
    def _is_data_quality(self) -> bool:
        return self.job.monitoring_type is MonitoringType.DATA_QUALITY

    def _require_object(self, uri: str, what: str) -> None:
        try:
            self.ctx.s3.get_bytes(S3Location.parse(uri))
        except S3AccessError as exc:
            raise ExecutionSetupError(f"ClientError: the {what} file {uri} cannot be read: {exc}") from exc

    def _script_inputs(self, environment: dict[str, str]) -> list[dict[str, Any]]:
        inputs = []
        app = self.job.app
        for uri, name, path, variable in (
            (
                app.record_preprocessor_source_uri,
                "pre_processor_script",
                PREPROCESSOR_PATH,
                "record_preprocessor_script",
            ),
            (
                app.post_analytics_processor_source_uri,
                "post_processor_script",
                POSTPROCESSOR_PATH,
                "post_analytics_processor_script",
            ),
        ):
            if uri:
                inputs.append(s3_input(name, str(uri), path))
                environment[variable] = f"{path}/{PurePosixPath(str(uri)).name}"
        return inputs

    def _model_quality(self, environment: dict[str, str]) -> list[dict[str, Any]]:
        endpoint_input = self.job.endpoint_input
        environment["analysis_type"] = "MODEL_QUALITY"
        if self.job.app.problem_type:
            environment["problem_type"] = self.job.app.problem_type
        attributes = (
            (
                (endpoint_input.inference_attribute, "inference_attribute"),
                (endpoint_input.probability_attribute, "probability_attribute"),
                (endpoint_input.probability_threshold_attribute, "probability_threshold_attribute"),
            )
            if endpoint_input
            else ()
        )
        for value, variable in attributes:
            if value is not None:
                environment[variable] = str(value)
        if not self.job.ground_truth_uri:
            raise ExecutionSetupError("ClientError: a model quality execution needs GroundTruthS3Input.S3Uri.")
        uri = str(self.job.ground_truth_uri).rstrip("/") + "/"
        return [s3_input("groundtruth_input", uri, GROUND_TRUTH_PATH)]
