"""Runs a transform job for real: the model's serving container(s), every input object split, packed and sent.

Objects are dealt to instances by sorted S3 key; each instance handles its files one after another with up to
``MaxConcurrentTransforms`` requests in flight. A file's ``.out`` is written only when every request of it succeeded.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from urllib3.exceptions import HTTPError

from infra.control_plane.core.aws_services import S3AccessError, S3Location
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.execution.batch_jobs import JobStatus, launch_thread
from infra.control_plane.execution.executor_context import ExecutorContext
from infra.control_plane.execution.input_channels import ChannelError, gunzip_limited, list_objects
from infra.control_plane.execution.model_data import ModelDataError
from infra.control_plane.hosting.models import Models
from infra.control_plane.hosting.serving_chain import (
    HopFailed,
    PreparedContainer,
    ServingProcess,
    connection_pool,
    invoke_in_series,
    prepare_containers,
)
from infra.control_plane.transform.transform_jobs import (
    DEFAULT_MAX_PAYLOAD_MB,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    TransformJob,
)
from infra.control_plane.transform.transform_records import RecordError, pack_requests, request_body, split_records
from infra.runtime.api import ContainerRuntimeError, LogLine, ServingSpec

logger = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/TransformJobs"
_STRATEGIES = {"MULTI_RECORD": "MultiRecord", "SINGLE_RECORD": "SingleRecord"}


class TransformSetupError(Exception):
    """The job failed before any input was sent; the message becomes the FailureReason."""


@dataclass
class _Worker:
    instance_id: str
    processes: list[ServingProcess]  # the model's containers, in request order
    stream: str


@dataclass
class _Settings:
    strategy: str
    max_bytes: int
    concurrency: int
    timeout: float
    retries: int
    content_type: str | None
    accept: str | None
    assemble_line: bool


@dataclass
class _Outcome:
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)


class TransformExecutor:
    """Implements ``TransformLauncher``: each job runs in its own thread."""

    def __init__(self, context: ExecutorContext, models: Models, startup_timeout_seconds: float) -> None:
        self._ctx = context
        self._models = models
        self._startup_timeout = startup_timeout_seconds

    def launch(self, job: TransformJob) -> None:
        launch_thread(job, "transform", lambda: _TransformRun(self, job).run())


class _TransformRun:
    def __init__(self, executor: TransformExecutor, job: TransformJob) -> None:
        self.ctx = executor._ctx
        self.models = executor._models
        self.startup_timeout = executor._startup_timeout
        self.job = job
        self.request = job.request
        self.work_dir = self.ctx.work_root / job.name
        self.workers: list[_Worker] = []

    def run(self) -> None:
        self.job.started()
        try:
            objects = self._inputs()
            self._start_workers()
            settings = self._settings()
        except TransformSetupError as exc:
            self._stop_workers()
            self.job.finish(JobStatus.FAILED, str(exc))
            return
        try:
            outcome = self._transform(objects, settings)
        finally:
            self._stop_workers()
        if outcome.failures:
            self.job.finish(JobStatus.FAILED, "; ".join(outcome.failures))
        else:
            self.job.finish(JobStatus.COMPLETED)

    def _inputs(self) -> list[tuple[S3Location, str]]:
        source = self.request.transform_input.data_source.s3_data_source
        if source is None:  # refused by CreateTransformJob
            raise TransformSetupError("ClientError: TransformInput.DataSource must have an S3DataSource.")
        try:
            objects = list_objects(self.ctx.s3, source.s3_uri, source.s3_data_type)
        except ChannelError as exc:
            raise TransformSetupError(f"ClientError: {exc}") from exc
        if not objects:
            raise TransformSetupError(f'ClientError: No S3 objects found under S3 URL "{source.s3_uri}".')
        return objects

    def _start_workers(self) -> None:
        model = self.models.store.find(self.request.model_name)
        if model is None or not model.containers:
            raise TransformSetupError(f"ClientError: Could not find model {self.request.model_name}.")
        try:
            prepared = prepare_containers(
                self.ctx.containers, self.ctx.s3, self.ctx.region, model.containers, self.work_dir
            )
        except (ContainerRuntimeError, ModelDataError) as exc:
            raise TransformSetupError(f"ClientError: {exc}") from exc
        if any(container.multi_model for container in prepared):
            raise TransformSetupError("ClientError: Batch transform does not support a model with Mode MultiModel.")
        batch_environment = self._batch_environment()
        count = self.request.transform_resources.instance_count or 1
        for index in range(count):
            self._start_worker(prepared, batch_environment, index)

    def _batch_environment(self) -> dict[str, str]:
        env = {"SAGEMAKER_BATCH": "true"}
        optional = {
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": self.request.max_payload_in_mb,
            "SAGEMAKER_BATCH_STRATEGY": _env_strategy(self.request.batch_strategy),
            "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": self.request.max_concurrent_transforms or None,
        }
        env.update({key: str(value) for key, value in optional.items() if value is not None})
        env.update(self.request.environment)
        return env

    def _start_worker(self, prepared: Sequence[PreparedContainer], batch_env: Mapping[str, str], index: int) -> None:
        """One instance: every container of the model (an inference pipeline's in order)."""
        instance_id = f"i-{uuid.uuid4().hex[:17]}"
        stream = f"{self.job.name}/{instance_id}"
        self.ctx.logs.ensure_stream(LOG_GROUP, stream)

        def on_log(line: LogLine) -> None:
            self.ctx.logs.put(LOG_GROUP, stream, [(int(line.timestamp.timestamp() * 1000), line.text)])

        worker = _Worker(instance_id, [], stream)
        self.workers.append(worker)  # stopped with the others even when a later container fails to start
        several = len(prepared) > 1
        for container in prepared:
            spec = ServingSpec(
                name=f"{self.job.name}-{index + 1}" + (f"-{container.hostname}" if several else ""),
                image=container.image,
                work_dir=self.work_dir / instance_id / container.hostname if several else self.work_dir / instance_id,
                model_dir=container.model_dir,
                environment={**container.environment, **batch_env},
                startup_timeout_seconds=self.startup_timeout,
            )
            try:
                started = self.ctx.containers.runtime.start_serving(spec, on_log)
            except ContainerRuntimeError as exc:
                raise TransformSetupError(f"ClientError: the model container did not start: {exc}") from exc
            pool = connection_pool(started.url)
            worker.processes.append(ServingProcess(container.hostname, started, pool, spec, on_log))

    def _stop_workers(self) -> None:
        for worker in self.workers:
            for process in worker.processes:
                try:
                    process.container.stop()
                finally:
                    process.pool.close()

    def _settings(self) -> _Settings:
        params = self._execution_parameters()
        request, client = self.request, self.request.model_client_config
        split = self.job.split_type
        strategy = request.batch_strategy or _STRATEGIES.get(str(params.get("BatchStrategy")), "MultiRecord")
        payload_mb = request.max_payload_in_mb
        if payload_mb is None:
            payload_mb = int(params.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_MB)
        concurrency = int(request.max_concurrent_transforms or params.get("MaxConcurrentTransforms") or 1)
        with self.job.lock:
            self.job.effective.update(
                BatchStrategy=strategy, MaxPayloadInMB=payload_mb, MaxConcurrentTransforms=concurrency
            )
        return _Settings(
            strategy=strategy if split != "None" else "SingleRecord",
            max_bytes=payload_mb * 1024 * 1024,
            concurrency=max(1, concurrency),
            timeout=float(client.invocations_timeout_in_seconds or DEFAULT_TIMEOUT_SECONDS),
            retries=DEFAULT_MAX_RETRIES if client.invocations_max_retries is None else client.invocations_max_retries,
            content_type=request.transform_input.content_type,
            accept=request.transform_output.accept,
            assemble_line=request.transform_output.assemble_with == "Line",
        )

    def _execution_parameters(self) -> dict[str, Any]:
        if self.request.max_concurrent_transforms and self.request.batch_strategy:
            return {}
        worker = self.workers[0].processes[0]
        try:
            response = worker.pool.urlopen("GET", "/execution-parameters", timeout=5.0, retries=False)
            loaded = json.loads(response.data) if response.status == 200 else {}
        except (HTTPError, ValueError):
            loaded = {}
        return loaded if isinstance(loaded, dict) else {}

    def _transform(self, objects: Sequence[tuple[S3Location, str]], settings: _Settings) -> _Outcome:
        outcome = _Outcome()
        threads = []
        for index, worker in enumerate(self.workers):
            mine = objects[index :: len(self.workers)]
            thread = threading.Thread(target=self._worker_loop, args=(worker, mine, settings, outcome), daemon=True)
            threads.append(thread)
            thread.start()
        for thread in threads:
            thread.join()
        return outcome

    def _worker_loop(
        self, worker: _Worker, objects: Sequence[tuple[S3Location, str]], settings: _Settings, outcome: _Outcome
    ) -> None:
        output = S3Location.parse(self.request.transform_output.s3_output_path)
        with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
            for location, relative in objects:
                if self.job.stop_requested.is_set():
                    return
                try:
                    body = _FileTransform(self.job, worker, settings, pool).run(self._read(location))
                    self.ctx.s3.put_bytes(output.child(relative + ".out"), body)
                except (RecordError, _InvokeError, S3AccessError) as exc:
                    message = f"{location.uri}: {exc}"
                    outcome.add(message)
                    self._data_log(worker, message)

    def _read(self, location: S3Location) -> bytes:
        data = self.ctx.s3.get_bytes(location)
        if self.request.transform_input.compression_type == "Gzip":
            try:
                return gunzip_limited(data, self.ctx.quotas.transform_object_mib * 1024 * 1024, location)
            except ChannelError as exc:  # invalid gzip, or more than the quota once decompressed
                raise RecordError(str(exc)) from exc
        return data

    def _data_log(self, worker: _Worker, message: str) -> None:
        stamp = int(utcnow().timestamp() * 1000)
        self.ctx.logs.put(LOG_GROUP, f"{worker.stream}/data-log", [(stamp, message)])


class _InvokeError(Exception):
    """A request failed after every retry."""


class _FileTransform:
    """One input file: split, filter, pack, send (in order), join/filter, assemble."""

    def __init__(self, job: TransformJob, worker: _Worker, settings: _Settings, pool: ThreadPoolExecutor) -> None:
        self.job, self.worker, self.settings, self.pool = job, worker, settings, pool
        self.processing = job.data_processing

    def run(self, data: bytes) -> bytes:
        records = split_records(data, self.job.split_type)
        sent = [self.processing.filter_input(r) for r in records] if self.processing.active else records
        batches = pack_requests(sent, self.settings.strategy, self.job.split_type, self.settings.max_bytes)
        bodies = [request_body(sent, b, self.job.split_type, self.settings.strategy) for b in batches]
        responses = list(self.pool.map(self._invoke, bodies))
        pieces = [self._finish(records, batch, response) for batch, response in zip(batches, responses, strict=True)]
        return b"".join(pieces)

    def _finish(self, records: Sequence[bytes], batch: Sequence[int], response: bytes) -> bytes:
        if not self.processing.active:
            return self._assemble(response)
        outputs = [response] if len(batch) == 1 else response.strip(b"\n").split(b"\n")
        if len(outputs) != len(batch):
            raise RecordError(
                f"JoinSource/OutputFilter need one output line per record: sent {len(batch)}, got {len(outputs)}"
            )
        joined = [self.processing.finish(records[i], out) for i, out in zip(batch, outputs, strict=True)]
        return b"".join(self._assemble(piece) for piece in joined)

    def _assemble(self, body: bytes) -> bytes:
        if self.settings.assemble_line and not body.endswith(b"\n"):
            return body + b"\n"
        return body

    def _invoke(self, body: bytes) -> bytes:
        headers = {"Content-Type": self.settings.content_type or "application/octet-stream"}
        if self.settings.accept:
            headers["Accept"] = self.settings.accept
        last = ""
        for _ in range(self.settings.retries + 1):
            if self.job.stop_requested.is_set():
                raise _InvokeError("the job was stopped")
            try:
                response = invoke_in_series(self.worker.processes, body, headers, self.settings.timeout)
            except HopFailed as exc:
                if exc.status == 0:
                    last = f"the model container did not answer: {exc.message}"
                    continue
                last = f"the model container answered {exc.status}: {exc.message}"
                if exc.status < 500:
                    break
                continue
            return bytes(response.data)
        raise _InvokeError(last[:500])


def _env_strategy(strategy: object) -> str | None:
    return {"MultiRecord": "MULTI_RECORD", "SingleRecord": "SINGLE_RECORD"}.get(str(strategy)) if strategy else None
