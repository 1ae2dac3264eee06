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
import functools
import json
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from infra.runtime.api import (
    ContainerImage,
    ContainerRuntimeError,
    Entry,
    IsolationMode,
    LogCallback,
    ProcessingSpec,
    ServingSpec,
    TrainingOutcome,
    TrainingSpec,
)
from infra.runtime.process.host_process import HostProcess
from infra.runtime.process.isolation import Isolation, resolve_isolation, write_hosts_file
from infra.runtime.process.job_runs import ProcessProcessingRun, ProcessTrainingRun
from infra.runtime.process.jobs import Job, Launch, container_argv
from infra.runtime.process.layout import (
    HostLayout,
    host_names,
    lay_out_job_python,
    lay_out_processing_host,
    lay_out_serving,
    lay_out_training_host,
)
from infra.runtime.process.process_ledger import ProcessLedger, reap_survivors
from infra.runtime.process.process_serving import (
    ProcessServingContainer,
    free_port,
    free_port_pair,
    serving_environment,
    start_when_healthy,
)
from infra.runtime.process.warm_hosts import (
    START_CHANNEL,
    WarmHosts,
    WarmHostSet,
    import_environment,
    standby_key,
    warm_module,
)
from infra.runtime.settings import RuntimeSettings

logger = logging.getLogger(__name__)

JOB_BIN = Path(__file__).resolve().parent / "job_bin"  # commands every unprivileged job finds on its PATH

__all__ = ["ProcessProcessingRun", "ProcessRuntime", "ProcessTrainingRun", "exit_on_sigterm"]


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
        self._warm = WarmHosts(data_dir / "warm-hosts", self.settings.warm_host_sets)
        self._standby = WarmHosts(
            data_dir / "standby-hosts",
            self.settings.standby_host_sets,
            kind="standby hosts",
            idle_seconds=self.settings.standby_idle_seconds,
        )
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
        artifacts = spec.work_dir / "artifacts"
        if artifacts.exists():
            shutil.rmtree(artifacts)
        argv = container_argv(spec.image, Entry.TRAIN, spec.entrypoint, spec.arguments)
        warm = self._claim_warm(spec, hosts)
        run_dir = warm.slot_dir if warm is not None else spec.work_dir
        hosts_file = self._hosts_file(run_dir, hosts)
        rabit_port = free_port_pair()
        launches = []
        for index, host in enumerate(hosts):
            layout = lay_out_training_host(
                replace(spec, work_dir=run_dir),
                host,
                hosts,
                self._isolation.base(run_dir / host),
                self.settings.link_inputs,
            )
            env = self._environment(
                spec.image,
                {"TRAINING_JOB_NAME": spec.job_name, "SAGEMAKER_HTTP_PORT": "8080"},
                spec.environment,
                {**self._isolation.environment(layout.root), "SAGESTACK_RABIT_PORT": str(rabit_port)},
            )
            if spec.image.installs_packages and spec.image.command:
                _put_first_on_path(
                    env, lay_out_job_python(layout.root, self._isolation.base(layout.root), spec.image.command[0])
                )
            if warm is not None:
                self._isolation.hand_over(layout, run_dir)  # the job's files, laid out by the stack, become its user's
                launches.append(Launch(host, argv, env, layout.root, started=warm.processes[index]))
            else:
                launches.append(Launch(host, self._isolation.wrap(argv, layout, hosts_file, run_dir), env, layout.root))
        how = (
            self.isolation_mode.value if warm is None else "a warm pool's hosts" if spec.warm_pool else "standby hosts"
        )
        logger.info("starting training job %s on %s (%s)", spec.job_name, ", ".join(hosts), how)
        job = self._register(
            Job(spec.job_name, launches, on_log, spec.max_runtime_seconds, self._grace(), self._ledger)
        )
        if warm is not None:  # the job has adopted the hosts (their logs are its own): now they may start
            self._start_warm_job(warm, job, argv[len(spec.image.command) :], [launch.env for launch in launches])
        on_end = self._prestart_after(spec, hosts)
        return ProcessTrainingRun(spec, job, hosts, warm.slot_dir if warm is not None else None, on_end)

    @staticmethod
    def _start_warm_job(warm: WarmHostSet, job: Job, args: Sequence[str], envs: Sequence[Mapping[str, str]]) -> None:
        for index, env in enumerate(envs):
            try:
                warm.start(index, json.dumps({"argv": list(args), "env": dict(env)}).encode())
            except OSError as exc:  # the host died before its job reached it: the job fails with its exit
                logger.warning("job %s: warm host %d did not take the job: %s", job.name, index + 1, exc)
                job.stop(grace_seconds=0.0)
                return

    def release_warm_pool(self, pool: str) -> None:
        """End the pool's pre-started hosts (the pool expired or was terminated)."""
        self._warm.release(pool)

    def warm_pools(self) -> list[str]:
        """Pools with a ready, pre-started host set."""
        return self._warm.keys()

    def standby_host_sets(self) -> list[str]:
        """Keys of the ready standby host sets (docs/performance.md#warm-pools)."""
        return self._standby.keys()

    def _warm_eligible(self, spec: TrainingSpec) -> str | None:
        if not self._isolation.namespaced or spec.entrypoint or spec.arguments or spec.checkpoint_dir is not None:
            return None
        return warm_module(spec.image)

    def _claim_warm(self, spec: TrainingSpec, hosts: Sequence[str]) -> WarmHostSet | None:
        """The pool's set for a warm-pool job, else a standby set kept for the same kind of job, else ``None``."""
        if spec.warm_pool is not None and self._warm_eligible(spec) is None:
            self._warm.release(spec.warm_pool)
        if self._warm_eligible(spec) is None:
            return None
        probe = self._environment(spec.image, {}, spec.environment, {})
        if spec.warm_pool is not None:
            return self._warm.claim(spec.warm_pool, spec.image, hosts, spec.instance_type, probe)
        key = standby_key(spec.image, hosts, spec.instance_type, probe)
        return self._standby.claim(key, spec.image, hosts, spec.instance_type, probe)

    def _prestart_after(self, spec: TrainingSpec, hosts: Sequence[str]) -> Callable[[TrainingOutcome], None]:
        """When the job ends, pre-start the next host set (in the background): its pool's when it completed in a
        warm pool; a standby set for the next job like it when it has no warm pool, whatever its outcome."""

        def on_end(outcome: TrainingOutcome) -> None:
            module = self._warm_eligible(spec)
            if module is None or self._closed:
                return
            if spec.warm_pool is not None:
                if outcome is not TrainingOutcome.COMPLETED:
                    return
                hosts_kept, key = self._warm, spec.warm_pool
            elif len(hosts) > self.settings.standby_max_instances:
                return
            else:
                probe = self._environment(spec.image, {}, spec.environment, {})
                hosts_kept, key = self._standby, standby_key(spec.image, hosts, spec.instance_type, probe)
            start = functools.partial(self._start_warm_hosts, spec, hosts, module)
            threading.Thread(
                target=hosts_kept.prestart,
                args=(key, spec.image, spec.instance_type, start),
                name=f"sagestack-prestart-{key}",
                daemon=True,
            ).start()

        return on_end

    def _start_warm_hosts(
        self, spec: TrainingSpec, hosts: Sequence[str], module: str, slot_dir: Path
    ) -> tuple[tuple[HostLayout, ...], tuple[HostProcess, ...], Mapping[str, str]]:
        hosts_file = self._hosts_file(slot_dir, hosts)
        layouts, processes = [], []
        env: dict[str, str] = {}
        argv = [sys.executable, "-m", "containers.toolkit.warm_start", module]
        import_env = import_environment(spec.environment)
        try:
            for host in hosts:
                layout = HostLayout(host=host, root=slot_dir / host)
                layout.root.mkdir()
                # the job's own import-time variables (thread-pool sizes, PYTHON*): the next job like it has them too
                env = self._environment(spec.image, {}, import_env, self._isolation.environment(layout.root))
                wrapped = self._isolation.wrap(argv, layout, hosts_file, slot_dir)  # creates the host's private /tmp
                channel = slot_dir / f"{host}.tmp" / START_CHANNEL
                os.mkfifo(channel, 0o600)
                self._isolation.hand_over(layout, slot_dir, channel)  # the job's user reads its start channel
                layouts.append(layout)
                processes.append(HostProcess(host, wrapped, env, layout.root, ledger=self._ledger))
        except OSError:
            for process in processes:  # the hosts started before one failed: no half set is left running
                process.terminate(0.0)
            raise
        return tuple(layouts), tuple(processes), env

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
        launch = functools.partial(self._launch_serving, spec, layout, on_log)
        container = start_when_healthy(launch, spec.startup_timeout_seconds)
        container.pin_unix_socket(layout.root)
        return container

    def _launch_serving(
        self, spec: ServingSpec, layout: HostLayout, on_log: LogCallback | None
    ) -> tuple[ProcessServingContainer, HostProcess]:
        """A ``serve`` process started on a newly picked port, registered to be stopped at shutdown."""
        port = free_port()
        serving_env = {
            **serving_environment(port, self._isolation.base(layout.root)),
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
        return container, process

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
        self._warm.release_all()
        self._standby.release_all()
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
        # The image's interpreter is `python` on its PATH, as in a Docker image (scripts such as the SDK's
        # remote-function job_driver.sh call a bare `python`).
        interpreter_dir = str(Path(image.command[0]).parent) if image.command else ""
        if interpreter_dir and interpreter_dir != ".":
            _put_first_on_path(env, interpreter_dir)
        if self._isolation.unprivileged:  # a `sudo` that runs the command as the job's own user (docs/security.md)
            _put_first_on_path(env, str(JOB_BIN))
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


def _put_first_on_path(env: dict[str, str], directory: str) -> None:
    env["PATH"] = os.pathsep.join(p for p in (directory, env.get("PATH", "")) if p)


def exit_on_sigterm() -> None:
    """For entry points (never library code): turn SIGTERM into ``SystemExit`` so atexit hooks stop containers."""

    def _exit(signum: int, frame: FrameType | None) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
