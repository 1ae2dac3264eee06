"""Runs a training job for real: inputs from S3, the container through the runtime, outputs back to S3."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from infra.control_plane.core.aws_services import S3AccessError, S3Location
from infra.control_plane.execution.executor_context import ExecutorContext
from infra.control_plane.execution.input_channels import ChannelError, host_names, materialise_channels
from infra.control_plane.execution.model_data import pack_dir
from infra.control_plane.training.builtin_metrics import MetricCollector, builtin_metric_definitions
from infra.control_plane.training.training_jobs import (
    SecondaryStatus,
    TrainingJob,
    TrainingJobStatus,
)
from infra.runtime.api import ContainerRuntimeError, LogLine, TrainingOutcome, TrainingResult, TrainingSpec

logger = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_REASON_LIMIT = 1024


class JobSetupError(Exception):
    """The job failed before its container could start; the message becomes the FailureReason."""


class TrainingExecutor:
    """Starts each job in its own thread; implements ``TrainingLauncher``."""

    def __init__(self, context: ExecutorContext) -> None:
        self._context = context
        self._threads: list[threading.Thread] = []

    def launch(self, job: TrainingJob) -> None:
        thread = threading.Thread(target=self._run, args=(job,), name=f"training-{job.name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self, job: TrainingJob) -> None:
        try:
            _JobRun(self._context, job).run()
        except Exception as exc:  # the job must end in a terminal state whatever happens
            logger.exception("training job %s crashed in the control plane", job.name)
            _finish(job, TrainingJobStatus.FAILED, SecondaryStatus.FAILED, f"InternalServerError: {exc}")
        if job.on_end is not None:
            job.on_end(job)


def _finish(job: TrainingJob, status: TrainingJobStatus, secondary: SecondaryStatus, reason: str | None) -> None:
    with job.lock:
        if job.is_terminal:
            return
        job.failure_reason = reason[:_REASON_LIMIT] if reason else None
        job.advance(secondary, status)


class _JobRun:
    def __init__(self, context: ExecutorContext, job: TrainingJob) -> None:
        self.ctx = context
        self.job = job
        self.request = job.request
        self.work_dir = context.work_root / job.name
        self.hosts = host_names(self.request.resource_config.instance_count)
        spec = self.request.algorithm_specification
        self.image_uri = str(spec.training_image)
        self.metrics = MetricCollector(
            [{"Name": d.name, "Regex": d.regex} for d in spec.metric_definitions]
            or builtin_metric_definitions(self.image_uri)
        )
        self.streams: dict[str, str] = {}

    def run(self) -> None:
        try:
            spec = self._prepare()
        except JobSetupError as exc:
            _finish(self.job, TrainingJobStatus.FAILED, SecondaryStatus.FAILED, str(exc))
            return
        if self.job.stop_requested.is_set():
            _finish(self.job, TrainingJobStatus.STOPPED, SecondaryStatus.STOPPED, None)
            return
        result, timed_out = self._train(spec)
        self._conclude(result, timed_out)

    def _prepare(self) -> TrainingSpec:
        try:
            image = self.ctx.containers.resolve(self.image_uri)
        except ContainerRuntimeError as exc:
            raise JobSetupError(f"ClientError: {exc}") from exc
        self.job.advance(SecondaryStatus.DOWNLOADING)
        shutil.rmtree(self.work_dir, ignore_errors=True)
        try:
            channels = materialise_channels(
                self.ctx.s3,
                self.request.input_data_config,
                self.hosts,
                self.work_dir / "channels",
                self.request.resource_config.volume_size_in_gb,
            )
            checkpoint_dir = self._checkpoints_in()
        except (ChannelError, S3AccessError) as exc:
            raise JobSetupError(f"ClientError: {exc}") from exc
        return TrainingSpec(
            job_name=self.job.name,
            image=image,
            work_dir=self.work_dir / "hosts",
            hyperparameters=dict(self.request.hyper_parameters),
            channels=channels,
            environment=self._environment(),
            instance_count=len(self.hosts),
            instance_type=self.request.resource_config.instance_type,
            checkpoint_dir=checkpoint_dir,
            checkpoint_s3_uri=self.request.checkpoint_config.s3_uri if self.request.checkpoint_config else None,
            max_runtime_seconds=self._max_runtime(),
            entrypoint=_listed(self.request.algorithm_specification.container_entrypoint),
            arguments=_listed(self.request.algorithm_specification.container_arguments),
            warm_pool=self.job.warm_pool.pool_id if self.job.warm_pool is not None else None,
        )

    def _environment(self) -> dict[str, str]:
        env = {
            "TRAINING_JOB_NAME": self.job.name,
            "TRAINING_JOB_ARN": self.job.arn,
            "AWS_REGION": self.ctx.region,
            "AWS_DEFAULT_REGION": self.ctx.region,
            "AWS_ENDPOINT_URL": self.ctx.stack_url,
            **self.ctx.job_credentials.environment(),
        }
        env.update(self.request.environment)
        return env

    def _max_runtime(self) -> int:
        return self.request.stopping_condition.max_runtime_in_seconds

    def _checkpoints_in(self) -> Path | None:
        config = self.request.checkpoint_config
        if config is None:
            return None
        local = self.work_dir / "checkpoints"
        local.mkdir(parents=True, exist_ok=True)
        self.ctx.s3.download_prefix(S3Location.parse(config.s3_uri), local)
        return local

    def _train(self, spec: TrainingSpec) -> tuple[TrainingResult, bool]:
        self.job.advance(SecondaryStatus.TRAINING)
        with self.job.lock:
            self.job.start_time = self.job.transitions[-1]["StartTime"]
        run = self.ctx.containers.runtime.start_training(spec, self._on_log)
        timed_out = threading.Event()
        watchdog = _Watchdog(self.job, run.stop, self._max_runtime(), timed_out)
        watchdog.start()
        try:
            return run.wait(), timed_out.is_set()
        finally:
            watchdog.cancel()

    def _on_log(self, line: LogLine) -> None:
        self.metrics.feed(line.text, line.timestamp)
        stream = self.streams.get(line.host)
        if stream is None:
            stream = f"{self.job.name}/{line.host}-{int(self.job.creation_time.timestamp())}"
            self.streams[line.host] = stream
        self.ctx.logs.put(LOG_GROUP, stream, [(int(line.timestamp.timestamp() * 1000), line.text)])

    def _conclude(self, result: TrainingResult, timed_out: bool) -> None:
        with self.job.lock:
            self.job.final_metrics = self.metrics.final()
        outcome = result.outcome
        if outcome == TrainingOutcome.FAILED and not self.job.stop_requested.is_set():
            _finish(self.job, TrainingJobStatus.FAILED, SecondaryStatus.FAILED, _reason(result))
            return
        self.job.advance(SecondaryStatus.UPLOADING)
        try:
            self._upload(result)
        except S3AccessError as exc:
            _finish(self.job, TrainingJobStatus.FAILED, SecondaryStatus.FAILED, f"ClientError: {exc}")
            return
        if outcome == TrainingOutcome.MAX_RUNTIME_EXCEEDED or timed_out:
            _finish(self.job, TrainingJobStatus.STOPPED, SecondaryStatus.MAX_RUNTIME_EXCEEDED, None)
        elif outcome == TrainingOutcome.COMPLETED and not self.job.stop_requested.is_set():
            _finish(self.job, TrainingJobStatus.COMPLETED, SecondaryStatus.COMPLETED, None)
        else:
            _finish(self.job, TrainingJobStatus.STOPPED, SecondaryStatus.STOPPED, None)

    def _upload(self, result: TrainingResult) -> None:
        output = S3Location.parse(self.request.output_data_config.s3_output_path)
        target = output.child(self.job.name, "output")
        archive = pack_dir(result.model_dir, self.work_dir / "model.tar.gz")
        self.ctx.s3.put_file(target.child("model.tar.gz"), archive)
        with self.job.lock:
            self.job.model_artifacts = target.child("model.tar.gz").uri
        if result.output_data_dir.is_dir() and any(result.output_data_dir.iterdir()):
            data = pack_dir(result.output_data_dir, self.work_dir / "output.tar.gz")
            self.ctx.s3.put_file(target.child("output.tar.gz"), data)
        self._checkpoints_out()

    def _checkpoints_out(self) -> None:
        config = self.request.checkpoint_config
        local = self.work_dir / "checkpoints"
        if config is not None and local.is_dir():
            self.ctx.s3.upload_dir(local, S3Location.parse(config.s3_uri))


class _Watchdog:
    """Stops the run when MaxRuntimeInSeconds passes or when StopTrainingJob is called."""

    def __init__(
        self, job: TrainingJob, stop: Callable[[], None], max_runtime: int, timed_out: threading.Event
    ) -> None:
        self._job, self._stop, self._max_runtime, self._timed_out = job, stop, max_runtime, timed_out
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"watchdog-{job.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        deadline = self._max_runtime
        waited = 0.0
        while not self._done.is_set():
            if self._job.stop_requested.wait(0.1):
                self._stop()
                return
            waited += 0.1
            if waited >= deadline:
                self._timed_out.set()
                self._job.stop_requested.set()
                self._stop()
                return


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return list(values) if values is not None else None


def _reason(result: TrainingResult) -> str:
    if result.failure_reason:
        return result.failure_reason
    codes = ", ".join(f"{h.host} exited with code {h.exit_code}" for h in result.hosts if h.exit_code)
    return f"AlgorithmError: {codes or 'the container failed'}"
