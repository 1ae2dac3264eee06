"""The ``process`` runtime: containers run as local subprocesses whose ``/opt/ml`` is a per-host directory.

Model artifacts: ``TrainingResult.model_dir`` holds the merged ``/opt/ml/model`` of every host **only when every
host exited 0** (COMPLETED, or a STOPPED / MAX_RUNTIME_EXCEEDED job whose containers saved and exited cleanly on
SIGTERM). Otherwise it is an empty directory: a container killed mid-training may leave a half-written model, and
callers must upload ``model.tar.gz`` only from a non-empty ``model_dir`` of a job that is not FAILED.
``output_data_dir`` is always merged (it helps to debug failures).

Every process is started in its own session; signals go to its whole process group. :meth:`ProcessRuntime.shutdown`
stops everything still running and is registered with :mod:`atexit`; after it, the runtime starts nothing more
(a supervisor restarting a container it saw die during shutdown gets :class:`ContainerRuntimeError`). Every container
process is recorded in a :class:`ProcessLedger` under ``data_dir``; a new runtime first ends the processes an earlier
one recorded that are still alive (a stack killed with kill -9). Library code installs no signal handlers: a
long-running entry point that wants SIGTERM to run the atexit hooks calls :func:`exit_on_sigterm` once.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from infra.runtime.api import (
    ContainerImage,
    ContainerRuntimeError,
    Entry,
    IsolationMode,
    LogCallback,
    ProcessingResult,
    ProcessingSpec,
    ServingSpec,
    TrainingResult,
    TrainingSpec,
)
from infra.runtime.process.host_process import HostProcess
from infra.runtime.process.isolation import Isolation, resolve_isolation, write_hosts_file
from infra.runtime.process.jobs import Job, JobOutcome, Launch
from infra.runtime.process.layout import (
    host_names,
    host_path,
    lay_out_processing_host,
    lay_out_serving,
    lay_out_training_host,
    merge_order,
    merge_trees,
)
from infra.runtime.process.process_ledger import ProcessLedger, reap_survivors
from infra.runtime.process.process_serving import ProcessServingContainer, free_port, free_port_pair, wait_until_healthy
from infra.runtime.settings import RuntimeSettings

logger = logging.getLogger(__name__)

__all__ = ["ProcessProcessingRun", "ProcessRuntime", "ProcessTrainingRun", "container_argv", "exit_on_sigterm"]


def container_argv(
    image: ContainerImage,
    entry: Entry | None,
    entrypoint: Sequence[str] | None = None,
    arguments: Sequence[str] | None = None,
) -> list[str]:
    """``docker run [--entrypoint E] image [A...]`` as argv (docs/reference/container-contract.md#start-and-stop).

    The entry (``train``/``serve``) stands for the arguments SageMaker passes; ``arguments`` replace it, and an
    ``entrypoint`` replaces the image's command and drops the entry, as ``--entrypoint`` resets ``CMD``.
    """
    if entrypoint:
        return [*entrypoint, *(arguments or ())]
    default = [entry.value] if entry is not None else []
    return [*image.command, *(arguments if arguments else default)]


class ProcessTrainingRun:
    """A started training job (:class:`~infra.runtime.api.TrainingRun`)."""

    def __init__(self, spec: TrainingSpec, job: Job, hosts: Sequence[str]) -> None:
        self.spec = spec
        self._job = job
        self._hosts = tuple(hosts)
        self._result: TrainingResult | None = None
        self._lock = threading.Lock()

    @property
    def pids(self) -> tuple[int, ...]:
        return self._job.pids

    def is_running(self) -> bool:
        return self._job.is_running()

    def stop(self) -> None:
        self._job.stop()

    def wait(self) -> TrainingResult:
        outcome = self._job.wait()
        assert outcome is not None
        with self._lock:
            if self._result is None:
                self._result = self._collect(outcome)
            return self._result

    def _collect(self, outcome: JobOutcome) -> TrainingResult:
        artifacts = self.spec.work_dir / "artifacts"
        roots = [self.spec.work_dir / host for host in merge_order(self._hosts)]
        model_dir = artifacts / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        if outcome.all_exited_zero:
            merge_trees((root / "model" for root in roots), model_dir)
        else:
            logger.info("job %s: a host exited non-zero; its model is not collected", self.spec.job_name)
        output_dir = merge_trees((root / "output" / "data" for root in roots), artifacts / "output-data")
        logger.info("training job %s finished: %s", self.spec.job_name, outcome.outcome.value)
        return TrainingResult(outcome.outcome, outcome.hosts, model_dir, output_dir, outcome.failure_reason)


class ProcessProcessingRun:
    """A started processing job (:class:`~infra.runtime.api.ProcessingRun`)."""

    def __init__(self, spec: ProcessingSpec, job: Job, hosts: Sequence[str]) -> None:
        self.spec = spec
        self._job = job
        self._hosts = tuple(hosts)
        self._result: ProcessingResult | None = None
        self._lock = threading.Lock()

    @property
    def pids(self) -> tuple[int, ...]:
        return self._job.pids

    def stop(self) -> None:
        self._job.stop()

    def wait(self) -> ProcessingResult:
        outcome = self._job.wait()
        assert outcome is not None
        with self._lock:
            if self._result is None:
                outputs = {path: self._collect_output(path) for path in self.spec.outputs}
                self._result = ProcessingResult(outcome.outcome, outcome.hosts, outputs, outcome.failure_reason)
                logger.info("processing job %s finished: %s", self.spec.job_name, outcome.outcome.value)
            return self._result

    def _collect_output(self, container_path: str) -> Path:
        if len(self._hosts) == 1:
            return host_path(self.spec.work_dir / self._hosts[0], container_path)
        relative = container_path.strip("/").replace("/", "_")
        sources = (host_path(self.spec.work_dir / host, container_path) for host in merge_order(self._hosts))
        return merge_trees(sources, self.spec.work_dir / "outputs" / relative)


class ProcessRuntime:
    """Runs containers as subprocesses (the :class:`~infra.runtime.api.Runtime` protocol).

    ``data_dir`` holds the runtime's own scratch files. ``isolation`` forces a mode (checked to work here, else
    :class:`~infra.runtime.errors.IsolationError`); by default the best working mode is probed once per process.
    """

    def __init__(
        self,
        data_dir: Path,
        isolation: IsolationMode | None = None,
        *,
        settings: RuntimeSettings | None = None,
        stop_grace_seconds: float | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.settings = RuntimeSettings.resolve(settings, stop_grace_seconds)
        self._isolation: Isolation = resolve_isolation(isolation)
        self._lock = threading.Lock()
        self._jobs: list[Job] = []
        self._servers: list[ProcessServingContainer] = []
        self._closed = False
        data_dir.mkdir(parents=True, exist_ok=True)
        reap_survivors(data_dir)
        self._ledger = ProcessLedger(data_dir)
        atexit.register(self.shutdown)

    @property
    def isolation_mode(self) -> IsolationMode:
        return self._isolation.mode

    def start_training(self, spec: TrainingSpec, on_log: LogCallback | None = None) -> ProcessTrainingRun:
        self._refuse_when_closed(spec.job_name)
        hosts = host_names(spec.instance_count)
        hosts_file = self._hosts_file(spec.work_dir, hosts)
        rabit_port = free_port_pair()
        artifacts = spec.work_dir / "artifacts"
        if artifacts.exists():
            shutil.rmtree(artifacts)
        argv = container_argv(spec.image, Entry.TRAIN, spec.entrypoint, spec.arguments)
        launches = []
        for host in hosts:
            layout = lay_out_training_host(
                spec, host, hosts, self._isolation.base(spec.work_dir / host), self.settings.link_inputs
            )
            env = self._environment(
                spec.image,
                {"TRAINING_JOB_NAME": spec.job_name, "SAGEMAKER_HTTP_PORT": "8080"},
                spec.environment,
                {**self._isolation.environment(layout.root), "SAGESTACK_RABIT_PORT": str(rabit_port)},
            )
            launches.append(
                Launch(host, self._isolation.wrap(argv, layout, hosts_file, spec.work_dir), env, layout.root)
            )
        logger.info("starting training job %s on %s (%s)", spec.job_name, ", ".join(hosts), self.isolation_mode.value)
        job = self._register(
            Job(spec.job_name, launches, on_log, spec.max_runtime_seconds, self._grace(), self._ledger)
        )
        return ProcessTrainingRun(spec, job, hosts)

    def start_processing(self, spec: ProcessingSpec, on_log: LogCallback | None = None) -> ProcessProcessingRun:
        self._refuse_when_closed(spec.job_name)
        hosts = host_names(spec.instance_count)
        hosts_file = self._hosts_file(spec.work_dir, hosts)
        argv = container_argv(spec.image, None, spec.entrypoint, spec.arguments)
        if (spec.work_dir / "outputs").exists():
            shutil.rmtree(spec.work_dir / "outputs")
        # Hosts share the loopback: a multi-host Spark job's master gets ports of its own (docs/spark.md).
        spark_port = free_port_pair() if len(hosts) > 1 else None
        spark_env = (
            {"SAGESTACK_SPARK_MASTER_PORT": str(spark_port), "SAGESTACK_SPARK_MASTER_UI_PORT": str(spark_port + 1)}
            if spark_port is not None
            else {}
        )
        launches = []
        for host in hosts:
            layout = lay_out_processing_host(spec, host, hosts, self.settings.link_inputs)
            forced = {**self._isolation.environment(layout.root), **spark_env}
            env = self._environment(spec.image, {}, spec.environment, forced)
            launches.append(
                Launch(host, self._isolation.wrap(argv, layout, hosts_file, spec.work_dir), env, layout.root)
            )
        logger.info("starting processing job %s on %s", spec.job_name, ", ".join(hosts))
        job = self._register(
            Job(spec.job_name, launches, on_log, spec.max_runtime_seconds, self._grace(), self._ledger)
        )
        return ProcessProcessingRun(spec, job, hosts)

    def start_serving(self, spec: ServingSpec, on_log: LogCallback | None = None) -> ProcessServingContainer:
        self._refuse_when_closed(spec.name)
        layout = lay_out_serving(spec)
        port, extra_port = free_port(), free_port()
        serving_env = {
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SAGEMAKER_BIND_TO_ADDRESS": "127.0.0.1",
            "SAGEMAKER_SAFE_PORT_RANGE": f"{extra_port}-{extra_port}",
            **self._isolation.environment(layout.root),
        }
        env = self._environment(spec.image, {}, spec.environment, serving_env)
        # Every instance of a variant shares the model directory, so they share one user.
        argv = self._isolation.wrap(container_argv(spec.image, Entry.SERVE), layout, None, spec.model_dir)
        try:
            process = HostProcess(spec.name, argv, env, layout.root, on_log, ledger=self._ledger)
        except OSError as exc:
            raise ContainerRuntimeError(f"cannot start serving container {spec.name}: {exc}") from exc
        container = ProcessServingContainer(
            spec.name, process, port, self.settings.serving_stop_grace_seconds, self._prune
        )
        with self._lock:
            closed = self._closed
            if not closed:
                self._servers.append(container)
        if closed:  # shutdown ran while this one started: it was not there to be stopped
            container.stop(grace_seconds=0.0)
            self._refuse_when_closed(spec.name)
        try:
            wait_until_healthy(container, process, spec.startup_timeout_seconds)
        except BaseException:
            container.stop(grace_seconds=0.0)
            raise
        return container

    def shutdown(self) -> None:
        """Stop every job and server this runtime started (SIGTERM, SIGKILL after ``shutdown_grace_seconds``)."""
        with self._lock:
            self._closed = True
            jobs, servers = list(self._jobs), list(self._servers)
        grace = self.settings.shutdown_grace_seconds
        running = [job for job in jobs if job.is_running()]
        if running or any(server.is_alive() for server in servers):
            logger.info("shutting down %d job(s) and %d server(s)", len(running), len(servers))
        for job in running:
            job.stop(grace_seconds=grace)
        for server in servers:
            server.stop(grace_seconds=grace)
        for job in running:
            job.wait(timeout=grace + 5.0)
        self._prune()

    def _environment(
        self,
        image: ContainerImage,
        platform: Mapping[str, str],
        user: Mapping[str, str],
        forced: Mapping[str, str],
    ) -> dict[str, str]:
        """Passed-through basics < image ENV < SageMaker's platform variables < the spec's environment < forced."""
        env = self.settings.passthrough_environment()
        env.update(image.environment)
        env.update({"AWS_REGION": self.settings.region, "PYTHONUNBUFFERED": "1", **platform})
        env.update(user)
        env.update(forced)
        return env

    def _hosts_file(self, work_dir: Path, hosts: Sequence[str]) -> Path | None:
        if not self._isolation.namespaced:
            return None
        return write_hosts_file(work_dir / "etc-hosts", hosts)

    def _grace(self) -> float:
        return self.settings.stop_grace_seconds

    def _refuse_when_closed(self, name: str) -> None:
        if self._closed:
            raise ContainerRuntimeError(f"cannot start {name}: the stack is shutting down")

    def _register(self, job: Job) -> Job:
        self._prune()
        with self._lock:
            closed = self._closed
            if not closed:
                self._jobs.append(job)
        if closed:
            job.stop(grace_seconds=0.0)
            self._refuse_when_closed(job.name)
        return job

    def _prune(self) -> None:
        with self._lock:
            self._jobs = [job for job in self._jobs if job.is_running()]
            self._servers = [server for server in self._servers if server.is_alive()]


def exit_on_sigterm() -> None:
    """For entry points (never library code): turn SIGTERM into ``SystemExit`` so atexit hooks stop containers."""

    def _exit(signum: int, frame: FrameType | None) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
