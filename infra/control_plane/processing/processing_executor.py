"""Runs a processing job for real: S3 inputs in, the container through the runtime, outputs back to S3.

When ``AppSpecification.ContainerEntrypoint`` is given, the job runs the processing container
(``sagestack/processing``) with the entrypoint and arguments as its argv and the requested image's environment: a
framework image used for processing (``ScriptProcessor`` with ``sagemaker-xgboost``) runs the user's script, not its
algorithm. Outputs are uploaded only for a Completed job.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.control_plane.core.aws_services import S3AccessError, S3Location
from infra.control_plane.execution.batch_jobs import REASON_LIMIT, JobStatus, launch_thread
from infra.control_plane.execution.executor_context import ExecutorContext
from infra.control_plane.execution.input_channels import ChannelError, VolumeBudget, download_objects, list_objects
from infra.control_plane.processing.processing_jobs import ProcessingJob
from infra.control_plane.processing.processing_request import ProcessingS3Output
from infra.runtime.api import (
    ContainerImage,
    ContainerRuntimeError,
    LogLine,
    ProcessingResult,
    ProcessingSpec,
    TrainingOutcome,
)

logger = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
PROCESSING_IMAGE = "sagestack/processing"


class ProcessingSetupError(Exception):
    """The job failed before its container started; the message becomes the FailureReason."""


class ProcessingExecutor:
    """Implements ``ProcessingLauncher``: each job runs in its own thread."""

    def __init__(self, context: ExecutorContext) -> None:
        self._ctx = context

    def launch(self, job: ProcessingJob) -> None:
        launch_thread(job, "processing", lambda: _ProcessingRun(self._ctx, job).run())


class _ProcessingRun:
    def __init__(self, context: ExecutorContext, job: ProcessingJob) -> None:
        self.ctx = context
        self.job = job
        self.request = job.request
        self.app = job.request.app_specification
        self.work_dir = context.work_root / job.name
        self.streams: dict[str, str] = {}

    def run(self) -> None:
        try:
            spec = self._prepare()
        except ProcessingSetupError as exc:
            self.job.finish(JobStatus.FAILED, str(exc))
            return
        if self.job.stop_requested.is_set():
            self.job.finish(JobStatus.STOPPED)
            return
        self.job.started()
        try:
            run = self.ctx.containers.runtime.start_processing(spec, self._on_log)
        except ContainerRuntimeError as exc:
            self.job.finish(JobStatus.FAILED, f"ClientError: {exc}")
            return
        watcher = threading.Thread(target=self._watch_stop, args=(run,), daemon=True)
        watcher.start()
        result = run.wait()
        self._conclude(result)

    def _watch_stop(self, run: Any) -> None:
        while not self.job.is_terminal:
            if self.job.stop_requested.wait(0.2):
                run.stop()
                return

    def _prepare(self) -> ProcessingSpec:
        image = self._image()
        shutil.rmtree(self.work_dir, ignore_errors=True)
        resources = self.request.processing_resources.cluster_config
        entrypoint = self.app.container_entrypoint
        arguments = list(self.app.container_arguments or [])
        return ProcessingSpec(
            job_name=self.job.name,
            image=image,
            work_dir=self.work_dir / "hosts",
            inputs=self._inputs(),
            outputs=[str(o.local_path) for o in self._outputs()],
            environment=self._environment(),
            entrypoint=None,
            arguments=[*entrypoint, *arguments] if entrypoint else arguments or None,
            instance_count=resources.instance_count,
            instance_type=resources.instance_type,
            job_config=self._job_config(),
            max_runtime_seconds=self.request.stopping_condition.max_runtime_in_seconds,
        )

    def _image(self) -> ContainerImage:
        uri = self.app.image_uri
        try:
            image = self.ctx.containers.resolve(uri)
            if not self.app.container_entrypoint:
                return image
            runner = self.ctx.containers.resolve(PROCESSING_IMAGE)
        except ContainerRuntimeError as exc:
            raise ProcessingSetupError(f"ClientError: {exc}") from exc
        return ContainerImage(uri=uri, command=runner.command, environment=image.environment)

    def _inputs(self) -> dict[str, Path]:
        local: dict[str, Path] = {}
        budget = VolumeBudget(self.request.processing_resources.cluster_config.volume_size_in_gb)
        for item in self.request.processing_inputs:
            source = item.s3_input
            if source is None:  # refused by CreateProcessingJob
                continue
            target = self.work_dir / "inputs" / item.input_name
            target.mkdir(parents=True, exist_ok=True)
            try:
                objects = list_objects(self.ctx.s3, source.s3_uri, source.s3_data_type)
                download_objects(self.ctx.s3, objects, target, source.s3_compression_type == "Gzip", budget)
            except ChannelError as exc:
                raise ProcessingSetupError(f"ClientError: input {item.input_name}: {exc}") from exc
            local[str(source.local_path)] = target
        return local

    def _outputs(self) -> list[ProcessingS3Output]:
        return [o.s3_output for o in self.request.processing_output_config.outputs if o.s3_output is not None]

    def _environment(self) -> dict[str, str]:
        env = {
            "AWS_REGION": self.ctx.region,
            "AWS_DEFAULT_REGION": self.ctx.region,
            "AWS_ENDPOINT_URL": self.ctx.stack_url,
            **self.ctx.job_credentials.environment(),
        }
        env.update(self.request.environment)
        return env

    def _job_config(self) -> dict[str, object]:
        """``/opt/ml/config/processingjobconfig.json``: the request's members as sent, plus the job's ARN."""
        sent = self.request.wire()
        keys = ("ProcessingInputs", "ProcessingOutputConfig", "ProcessingResources", "AppSpecification")
        config: dict[str, object] = {key: sent[key] for key in keys if sent.get(key)}
        config.update(
            ProcessingJobArn=self.job.arn,
            Environment=dict(sent.get("Environment") or {}),
            RoleArn=sent.get("RoleArn"),
            StoppingCondition=sent.get("StoppingCondition") or {},
        )
        return config

    def _on_log(self, line: LogLine) -> None:
        stream = self.streams.get(line.host)
        if stream is None:
            stream = f"{self.job.name}/{line.host}-{int(self.job.creation_time.timestamp())}"
            self.streams[line.host] = stream
        self.ctx.logs.put(LOG_GROUP, stream, [(int(line.timestamp.timestamp() * 1000), line.text)])

    def _conclude(self, result: ProcessingResult) -> None:
        message = _exit_message(self.work_dir / "hosts", [h.host for h in result.hosts])
        with self.job.lock:
            self.job.exit_message = message
        if result.outcome is TrainingOutcome.STOPPED:
            self.job.finish(JobStatus.STOPPED)
        elif result.outcome is not TrainingOutcome.COMPLETED:
            self.job.finish(JobStatus.FAILED, _reason(result, message))
        else:
            self._upload(result)

    def _upload(self, result: ProcessingResult) -> None:
        try:
            for output in self._outputs():
                local = result.outputs.get(str(output.local_path))
                if local is not None and local.is_dir():
                    self.ctx.s3.upload_dir(local, S3Location.parse(output.s3_uri))
        except S3AccessError as exc:
            self.job.finish(JobStatus.FAILED, f"ClientError: uploading outputs: {exc}")
            return
        self.job.finish(JobStatus.COMPLETED)


def _exit_message(hosts_dir: Path, hosts: Sequence[str]) -> str | None:
    """The first host's ``/opt/ml/output/message`` (processing's failure file), at most 1 KB."""
    for host in hosts:
        try:
            text = (hosts_dir / host / "output" / "message").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if text.strip():
            return text.strip()[:REASON_LIMIT]
    return None


def _reason(result: ProcessingResult, message: str | None) -> str:
    if message:
        return message
    if result.failure_reason:
        return result.failure_reason
    codes = ", ".join(f"{h.host} exited with code {h.exit_code}" for h in result.hosts if h.exit_code)
    return f"AlgorithmError: {codes or 'the container failed'}"
