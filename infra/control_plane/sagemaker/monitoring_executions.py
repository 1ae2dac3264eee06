"""Monitoring executions: one execution of a schedule is one processing job on the monitoring image.

The runner stages what the analyzer's job contract asks for (``docs/model-monitor.md``) as processing inputs:

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
scheduled time. The execution ends ``Completed``, ``CompletedWithViolations`` (a non-empty
``constraint_violations.json``), ``Failed`` (with the job's ``FailureReason``) or ``Stopped``.

CloudWatch: the built-in analyzer publishes its metrics itself (processing jobs get the stack as
``AWS_ENDPOINT_URL``); for any other image the runner forwards the BYOC records file
``/opt/ml/output/metrics/cloudwatch/*.jsonl`` to the local CloudWatch with PutMetricData.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from moto.backends import get_backend

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.core.errors import ServiceError
from infra.control_plane.sagemaker.batch_jobs import REASON_LIMIT, JobStatus
from infra.control_plane.sagemaker.common import utcnow
from infra.control_plane.sagemaker.data_capture import CaptureWriter
from infra.control_plane.sagemaker.endpoint_configs import EndpointConfigs
from infra.control_plane.sagemaker.endpoints import Endpoints
from infra.control_plane.sagemaker.monitoring_clarify import CLARIFY_TYPES, ClarifySetupError, EmptyWindow
from infra.control_plane.sagemaker.monitoring_clarify_run import (
    ClarifyParts,
    ClarifyRunState,
    clarify_request,
    conclude_clarify,
    s3_input,
)
from infra.control_plane.sagemaker.monitoring_definitions import MonitoringJob, MonitoringType
from infra.control_plane.sagemaker.monitoring_time import hours_between, window_text
from infra.control_plane.sagemaker.processing_jobs import ProcessingJob, ProcessingJobs

logger = logging.getLogger(__name__)

__all__ = ["ExecutionContext", "ExecutionRunner", "ExecutionStatus", "MonitoringExecution", "is_builtin_analyzer"]

ANALYZER_IMAGE = re.compile(r"sagemaker-model-monitor-analyzer|sagestack[-/]model[-_]monitor")
BASELINE_STATS_PATH = "/opt/ml/processing/baseline/stats"
BASELINE_CONSTRAINTS_PATH = "/opt/ml/processing/baseline/constraints"
GROUND_TRUTH_PATH = "/opt/ml/processing/groundtruth"
PREPROCESSOR_PATH = "/opt/ml/processing/code/preprocessing"
POSTPROCESSOR_PATH = "/opt/ml/processing/code/postprocessing"
CAPTURE_FORMAT = {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}}
METRICS_FILE_DIR = PurePosixPath("output/metrics/cloudwatch")
_HOUR_FOLDER = re.compile(r"^(?P<variant>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/")
_POLL_SECONDS = 0.25
_METRIC_BATCH = 20


class ExecutionStatus(str, enum.Enum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    COMPLETED_WITH_VIOLATIONS = "CompletedWithViolations"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


_TERMINAL = {
    ExecutionStatus.COMPLETED,
    ExecutionStatus.COMPLETED_WITH_VIOLATIONS,
    ExecutionStatus.FAILED,
    ExecutionStatus.STOPPED,
}


class ExecutionSetupError(Exception):
    """The execution cannot start its processing job; the message becomes the FailureReason."""


@dataclass
class MonitoringExecution:
    schedule_name: str
    scheduled_time: datetime
    monitoring_type: MonitoringType
    definition_name: str | None
    endpoint_name: str | None
    creation_time: datetime = field(default_factory=utcnow)
    last_modified: datetime = field(default_factory=utcnow)
    status: ExecutionStatus = ExecutionStatus.PENDING
    failure_reason: str | None = None
    processing_job_arn: str | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def is_terminal(self) -> bool:
        return self.status in _TERMINAL

    def set(self, status: ExecutionStatus, reason: str | None = None) -> None:
        with self.lock:
            if self.is_terminal:
                return
            self.status = status
            self.failure_reason = reason[:REASON_LIMIT] if reason else None
            self.last_modified = utcnow()

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "MonitoringScheduleName": self.schedule_name,
                "ScheduledTime": self.scheduled_time,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
                "MonitoringExecutionStatus": self.status.value,
                "ProcessingJobArn": self.processing_job_arn,
                "EndpointName": self.endpoint_name,
                "FailureReason": self.failure_reason,
                "MonitoringJobDefinitionName": self.definition_name,
                "MonitoringType": self.monitoring_type.value,
            }


class CaptureSource(Protocol):
    """Where an endpoint's captures are (from its current endpoint config) and how to flush its buffer."""

    def destination(self, endpoint: str) -> str | None: ...

    def flush(self, endpoint: str) -> None: ...


class EndpointCaptures:
    """:class:`CaptureSource` over the endpoint services: the endpoint's config's ``DataCaptureConfig``."""

    def __init__(self, endpoints: Endpoints, configs: EndpointConfigs, writer: CaptureWriter) -> None:
        self._endpoints = endpoints
        self._configs = configs
        self._writer = writer

    def exists(self, endpoint: str) -> bool:
        return self._endpoints.store.find(endpoint) is not None

    def destination(self, endpoint: str) -> str | None:
        found = self._endpoints.store.find(endpoint)
        config = self._configs.store.find(found.config_name) if found is not None else None
        capture = (config.request.get("DataCaptureConfig") or {}) if config is not None else {}
        uri = capture.get("DestinationS3Uri")
        return str(uri) if uri and capture.get("EnableCapture", True) else None

    def flush(self, endpoint: str) -> None:
        self._writer.flush(endpoint)


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


def is_builtin_analyzer(image_uri: str) -> bool:
    return ANALYZER_IMAGE.search(image_uri) is not None


class ExecutionRunner:
    """Runs executions, each in its own daemon thread; whatever happens, the execution ends terminal."""

    def __init__(self, context: ExecutionContext) -> None:
        self._ctx = context

    def launch(self, execution: MonitoringExecution, job: MonitoringJob, window: Window) -> None:
        def guarded() -> None:
            try:
                _Run(self._ctx, execution, job, window).run()
            except Exception as exc:
                logger.exception("monitoring execution of %s crashed", execution.schedule_name)
                execution.set(ExecutionStatus.FAILED, f"InternalServerError: {exc}")

        name = f"monitoring-{execution.schedule_name}"
        threading.Thread(target=guarded, name=name, daemon=True).start()


class _Run:
    def __init__(
        self, context: ExecutionContext, execution: MonitoringExecution, job: MonitoringJob, window: Window
    ) -> None:
        self.ctx = context
        self.execution = execution
        self.job = job
        self.window = window
        stamp = execution.scheduled_time.strftime("%Y%m%d%H%M")
        self.clarify: ClarifyRunState | None = None
        self.job_name = f"model-monitoring-{stamp}-{uuid.uuid4().hex[:24]}"

    def run(self) -> None:
        try:
            request = self._clarify_request() if self.job.monitoring_type in CLARIFY_TYPES else self._request()
        except (ExecutionSetupError, ClarifySetupError) as exc:
            self.execution.set(ExecutionStatus.FAILED, str(exc))
            return
        except EmptyWindow as exc:
            self.execution.set(ExecutionStatus.COMPLETED, str(exc))
            return
        try:
            arn = self.ctx.processing_jobs.create_processing_job(request)["ProcessingJobArn"]
        except ServiceError as exc:
            self.execution.set(ExecutionStatus.FAILED, f"ClientError: {exc.message}")
            return
        with self.execution.lock:
            self.execution.processing_job_arn = arn
        self.execution.set(ExecutionStatus.IN_PROGRESS)
        processing = self.ctx.processing_jobs.store.get_or_raise(self.job_name)
        while not processing.is_terminal:
            time.sleep(_POLL_SECONDS)
        self._conclude(processing, str(request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]))

    # -- the processing request --------------------------------------------------------------------------------

    def _clarify_request(self) -> dict[str, Any]:
        """Bias / explainability: the window staged as a Clarify job (``monitoring_clarify``)."""
        if self.job.endpoint_input is None:
            raise ExecutionSetupError(
                "BatchTransformInput monitoring is not run by the Sagestack local stack yet; monitor an endpoint."
            )
        endpoint = str(self.job.endpoint_input["EndpointName"])
        destination = self.ctx.captures.destination(endpoint)
        if destination is None:
            raise ExecutionSetupError(f"ClientError: Endpoint {endpoint} does not exist or has no DataCaptureConfig.")
        self.ctx.captures.flush(endpoint)
        baseline = self.job.baseline
        constraints = (baseline.get("ConstraintsResource") or {}).get("S3Uri")
        if not constraints and baseline.get("BaseliningJobName"):
            constraints = f"{self._baselining_output(str(baseline['BaseliningJobName']))}/analysis.json"
        parts = ClarifyParts(
            job=self.job,
            job_name=self.job_name,
            schedule=self.execution.schedule_name,
            scheduled_time=self.execution.scheduled_time,
            window=(self.window.start, self.window.end),
            capture_root=S3Location.parse(destination).child(endpoint),
            baseline_uri=str(constraints) if constraints else None,
        )
        request, self.clarify = clarify_request(self.ctx.s3, parts)
        return request

    def _request(self) -> dict[str, Any]:
        job = self.job
        if job.endpoint_input is None:
            raise ExecutionSetupError(
                "BatchTransformInput monitoring is not run by the Sagestack local stack yet; monitor an endpoint."
            )
        endpoint = str(job.endpoint_input["EndpointName"])
        start_text, end_text = window_text(self.window.start, self.window.end)
        inputs = self._capture_inputs(endpoint)
        environment: dict[str, str] = {
            "dataset_format": json.dumps(CAPTURE_FORMAT),
            "dataset_source": str(job.endpoint_input["LocalPath"]),
            "output_path": str(job.output["LocalPath"]),
            "start_time": start_text,
            "end_time": end_text,
            "sagemaker_endpoint_name": endpoint,
            "sagemaker_monitoring_schedule_name": self.execution.schedule_name,
            "publish_cloudwatch_metrics": "Enabled",
        }
        inputs += self._baseline_inputs(environment)
        inputs += self._script_inputs(environment)
        if job.monitoring_type is MonitoringType.MODEL_QUALITY:
            inputs += self._model_quality(environment)
        environment.update(job.environment)
        hour_path = self.execution.scheduled_time.strftime("%Y/%m/%d/%H")
        output_uri = f"{str(job.output['S3Uri']).rstrip('/')}/{endpoint}/{self.execution.schedule_name}/{hour_path}"
        cluster = dict(job.cluster)
        request: dict[str, Any] = {
            "ProcessingJobName": self.job_name,
            "ProcessingInputs": inputs,
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "result",
                        "S3Output": {
                            "S3Uri": output_uri,
                            "LocalPath": str(job.output["LocalPath"]),
                            "S3UploadMode": str(job.output.get("S3UploadMode") or "EndOfJob"),
                        },
                    }
                ],
                **({"KmsKeyId": job.output_kms_key} if job.output_kms_key else {}),
            },
            "ProcessingResources": {"ClusterConfig": cluster},
            "AppSpecification": {
                key: job.app[key]
                for key in ("ImageUri", "ContainerEntrypoint", "ContainerArguments")
                if job.app.get(key)
            },
            "Environment": environment,
            "StoppingCondition": {"MaxRuntimeInSeconds": int(job.stopping.get("MaxRuntimeInSeconds") or 3600)},
            "RoleArn": job.role,
        }
        if job.network:
            request["NetworkConfig"] = dict(job.network)
        return request

    def _capture_inputs(self, endpoint: str) -> list[dict[str, Any]]:
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
        wanted = {hour.strftime("%Y/%m/%d/%H") for hour in hours_between(self.window.start, self.window.end)}
        folders: list[tuple[str, str]] = []
        variants: list[str] = []
        for key, _ in keys:
            match = _HOUR_FOLDER.match(key[len(prefix) :])
            if match is None:
                continue
            variant, hour = match.group("variant"), "/".join(match.group("y", "m", "d", "h"))
            if variant not in variants:
                variants.append(variant)
            if hour in wanted and (variant, hour) not in folders:
                folders.append((variant, hour))
        if not folders:  # an empty window: stage one empty folder so the analyzer reports "no data" itself
            folders = [(variants[0] if variants else "AllTraffic", min(wanted))]
        local_root = str(self.job.endpoint_input["LocalPath"]).rstrip("/") if self.job.endpoint_input else ""
        return [
            s3_input(
                f"endpoint_input_{index}",
                f"s3://{root.bucket}/{prefix}{variant}/{hour}/",
                f"{local_root}/{endpoint}/{variant}/{hour}",
            )
            for index, (variant, hour) in enumerate(sorted(folders), start=1)
        ]

    def _baseline_inputs(self, environment: dict[str, str]) -> list[dict[str, Any]]:
        baseline = self.job.baseline
        statistics = (baseline.get("StatisticsResource") or {}).get("S3Uri")
        constraints = (baseline.get("ConstraintsResource") or {}).get("S3Uri")
        if baseline.get("BaseliningJobName") and not (statistics and constraints):
            job_output = self._baselining_output(str(baseline["BaseliningJobName"]))
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
    def _is_data_quality(self) -> bool:
        return self.job.monitoring_type is MonitoringType.DATA_QUALITY

    def _baselining_output(self, name: str) -> str:
        found = self.ctx.processing_jobs.store.find(name)
        if found is None:
            raise ExecutionSetupError(f"ClientError: baselining job {name} does not exist.")
        outputs = (found.request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        uris = [o["S3Output"]["S3Uri"] for o in outputs if o.get("S3Output")]
        if not uris:
            raise ExecutionSetupError(f"ClientError: baselining job {name} has no S3 output to read a baseline from.")
        return str(uris[0]).rstrip("/")

    def _require_object(self, uri: str, what: str) -> None:
        try:
            self.ctx.s3.get_bytes(S3Location.parse(uri))
        except S3AccessError as exc:
            raise ExecutionSetupError(f"ClientError: the {what} file {uri} cannot be read: {exc}") from exc

    def _script_inputs(self, environment: dict[str, str]) -> list[dict[str, Any]]:
        inputs = []
        for key, name, path, variable in (
            ("RecordPreprocessorSourceUri", "pre_processor_script", PREPROCESSOR_PATH, "record_preprocessor_script"),
            (
                "PostAnalyticsProcessorSourceUri",
                "post_processor_script",
                POSTPROCESSOR_PATH,
                "post_analytics_processor_script",
            ),
        ):
            uri = self.job.app.get(key)
            if uri:
                inputs.append(s3_input(name, str(uri), path))
                environment[variable] = f"{path}/{PurePosixPath(str(uri)).name}"
        return inputs

    def _model_quality(self, environment: dict[str, str]) -> list[dict[str, Any]]:
        endpoint_input = self.job.endpoint_input or {}
        environment["analysis_type"] = "MODEL_QUALITY"
        if self.job.app.get("ProblemType"):
            environment["problem_type"] = str(self.job.app["ProblemType"])
        for key, variable in (
            ("InferenceAttribute", "inference_attribute"),
            ("ProbabilityAttribute", "probability_attribute"),
            ("ProbabilityThresholdAttribute", "probability_threshold_attribute"),
        ):
            if endpoint_input.get(key) is not None:
                environment[variable] = str(endpoint_input[key])
        if not self.job.ground_truth_uri:
            raise ExecutionSetupError("ClientError: a model quality execution needs GroundTruthS3Input.S3Uri.")
        uri = str(self.job.ground_truth_uri).rstrip("/") + "/"
        return [s3_input("groundtruth_input", uri, GROUND_TRUTH_PATH)]

    # -- the outcome -------------------------------------------------------------------------------------------

    def _conclude(self, processing: ProcessingJob, output_uri: str) -> None:
        with processing.lock:
            status, reason, message = processing.status, processing.failure_reason, processing.exit_message or ""
        if status is JobStatus.STOPPED:
            self.execution.set(ExecutionStatus.STOPPED)
            return
        if status is not JobStatus.COMPLETED:
            self.execution.set(ExecutionStatus.FAILED, reason or message or "the monitoring job failed")
            return
        if self.clarify is not None:
            count, failure, records = conclude_clarify(self.ctx.s3, self.clarify, output_uri)
            if records:
                publish_metrics(self.ctx.account_id, self.ctx.region, records, self.execution.endpoint_name)
            if failure:
                self.execution.set(ExecutionStatus.FAILED, failure)
            else:
                self.execution.set(ExecutionStatus.COMPLETED_WITH_VIOLATIONS if count else ExecutionStatus.COMPLETED)
            return
        if not is_builtin_analyzer(str(self.job.app.get("ImageUri", ""))):
            self._forward_metrics()
        violations = self._violation_count(output_uri)
        with_violations = violations > 0 or (violations < 0 and message.startswith("CompletedWithViolations"))
        self.execution.set(ExecutionStatus.COMPLETED_WITH_VIOLATIONS if with_violations else ExecutionStatus.COMPLETED)

    def _violation_count(self, output_uri: str) -> int:
        """Violations in the uploaded ``constraint_violations.json``; -1 when there is no readable file."""
        try:
            raw = self.ctx.s3.get_bytes(S3Location.parse(f"{output_uri}/constraint_violations.json"))
            violations = json.loads(raw).get("violations")
        except (S3AccessError, ValueError, AttributeError):
            return -1
        return len(violations) if isinstance(violations, list) else -1

    def _forward_metrics(self) -> None:
        directory = self.ctx.processing_work_root / self.job_name / "hosts" / "algo-1" / METRICS_FILE_DIR
        records = []
        for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    logger.warning("skipping a malformed CloudWatch metric record in %s", path)
        if records:
            publish_metrics(self.ctx.account_id, self.ctx.region, records, self.execution.endpoint_name)


def publish_metrics(account_id: str, region: str, records: Sequence[Mapping[str, Any]], endpoint: str | None) -> int:
    """PutMetricData into moto's CloudWatch (in process); returns how many records were stored."""
    default_namespace = (
        "aws/sagemaker/Endpoints/data-metrics" if endpoint else "aws/sagemaker/ModelMonitoring/data-metrics"
    )
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        datum = {
            key: record[key]
            for key in ("MetricName", "Dimensions", "Value", "StatisticValues", "Unit")
            if key in record
        }
        if "MetricName" not in datum:
            continue
        datum["Timestamp"] = _naive_utc(record.get("Timestamp"))
        by_namespace.setdefault(str(record.get("Namespace") or default_namespace), []).append(datum)
    stored = 0
    try:
        backend = get_backend("cloudwatch")[account_id][region]
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), _METRIC_BATCH):
                backend.put_metric_data(namespace, data[start : start + _METRIC_BATCH])
                stored += len(data[start : start + _METRIC_BATCH])
    except Exception:  # metrics never fail an execution
        logger.exception("publishing monitoring metrics to CloudWatch stopped after %d record(s)", stored)
    return stored


def _naive_utc(value: Any) -> datetime:
    """moto's CloudWatch compares naive UTC datetimes."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else datetime.now(UTC)
    except ValueError:
        moment = datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
