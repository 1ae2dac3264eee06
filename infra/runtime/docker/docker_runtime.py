"""The ``docker`` runtime: every host of a job is a real container (the :class:`~infra.runtime.api.Runtime` protocol).

- Training and processing: one container per host on a user-defined network the job holds alone (leased from
  :mod:`infra.runtime.docker.docker_networks`, reused by a later job once this one's containers are gone), where
  each container has the hostname and network alias ``algo-<i>`` (so distributed XGBoost finds its master); the
  host's directory from :mod:`infra.runtime.process.layout` is bind-mounted at ``/opt/ml``; the environment is
  SageMaker's. A loopback ``AWS_ENDPOINT_URL`` (the stack on ``127.0.0.1``) is rewritten to a relay on the network's
  gateway address (:mod:`infra.runtime.docker.docker_relay`), so user scripts and the Clarify container reach S3
  and SageMaker.
- Serving: ``serve`` with the container's port 8080 published on ``127.0.0.1`` only.
- Supervision is the process runtime's (:class:`~infra.runtime.process.jobs.Job`) applied to attached ``docker run``
  clients: logs stream to the callback per host, SIGTERM is forwarded to the container, a failed host stops the
  others, stop/MaxRuntime send SIGTERM then SIGKILL after the grace period. When a job ends, a post-mortem names an
  out-of-memory kill, a container that could not start, or an engine that went away; the result is then handed over
  at once, while the run's own thread removes the containers (``docker rm -f``) and gives the network back.
  ``shutdown`` (also at interpreter exit) removes every container and network this runtime labelled.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import secrets
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from infra.runtime.api import (
    ContainerImage,
    Entry,
    HostResult,
    LogCallback,
    ProcessingResult,
    ProcessingSpec,
    ServingSpec,
    TrainingOutcome,
    TrainingResult,
    TrainingSpec,
)
from infra.runtime.docker.docker_cli import LABEL_MANAGED, DockerCli
from infra.runtime.docker.docker_networks import JobNetwork, JobNetworks
from infra.runtime.docker.docker_reaper import LeftoverReaper
from infra.runtime.docker.docker_relay import relay_environment
from infra.runtime.docker.docker_run import ContainerCommand, LogTail, docker_name, local_image, post_mortem
from infra.runtime.docker.docker_serving import DockerServingContainer
from infra.runtime.images import container_name
from infra.runtime.process.jobs import Job, JobOutcome, Launch
from infra.runtime.process.layout import (
    CONTAINER_ROOT,
    host_names,
    host_path,
    lay_out_processing_host,
    lay_out_training_host,
    merge_order,
    merge_trees,
)
from infra.runtime.settings import RuntimeSettings

logger = logging.getLogger(__name__)

__all__ = ["DockerJobRun", "DockerRuntime", "processing_command"]

PROCESSING_RUNNER = "containers.processing"  # the module that runs a processing job's command (processing image)
# Images whose ENTRYPOINT runs a processing job's command as given: the processing runner and the framework images'
# entry, which runs any command that is not train/serve (docs/containers.md, "Framework containers").
COMMAND_RUNNING_CONTAINERS = frozenset({"processing", "scikit_learn", "pytorch"})


class DockerJobRun:
    """A started training or processing job (:class:`TrainingRun` / :class:`ProcessingRun`)."""

    def __init__(
        self,
        runtime: DockerRuntime,
        job: Job,
        containers: Mapping[str, str],
        network: JobNetwork,
        tail: LogTail,
        collect: TrainingSpec | ProcessingSpec,
    ) -> None:
        self._runtime = runtime
        self._job = job
        self._containers = dict(containers)  # host -> container name
        self._network = network
        self._tail = tail
        self._spec = collect
        self._lock = threading.Lock()
        self._cleaned_up = threading.Event()
        self._outcome: JobOutcome | None = None
        self._training: TrainingResult | None = None
        self._processing: ProcessingResult | None = None

    @property
    def containers(self) -> tuple[str, ...]:
        return tuple(self._containers.values())

    def is_running(self) -> bool:
        return self._job.is_running()

    def stop(self, grace_seconds: float | None = None) -> None:
        self._job.stop(grace_seconds=grace_seconds)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every host has exited and the containers are removed (``False`` on timeout)."""
        return self._cleaned_up.wait(timeout)

    def wait(self) -> TrainingResult:
        outcome = self._finish()
        assert isinstance(self._spec, TrainingSpec)
        with self._lock:
            if self._training is None:
                hosts = tuple(self._containers)
                artifacts = self._spec.work_dir / "artifacts"
                roots = [self._spec.work_dir / host for host in merge_order(hosts)]
                model_dir = artifacts / "model"
                model_dir.mkdir(parents=True, exist_ok=True)
                if outcome.all_exited_zero:
                    merge_trees((root / "model" for root in roots), model_dir)
                output_dir = merge_trees((root / "output" / "data" for root in roots), artifacts / "output-data")
                self._training = TrainingResult(
                    outcome.outcome, outcome.hosts, model_dir, output_dir, outcome.failure_reason
                )
            return self._training

    def wait_processing(self) -> ProcessingResult:
        outcome = self._finish()
        assert isinstance(self._spec, ProcessingSpec)
        with self._lock:
            if self._processing is None:
                outputs = {path: self._collect_output(self._spec, path) for path in self._spec.outputs}
                self._processing = ProcessingResult(outcome.outcome, outcome.hosts, outputs, outcome.failure_reason)
            return self._processing

    def _collect_output(self, spec: ProcessingSpec, container_path: str) -> Path:
        hosts = tuple(self._containers)
        if len(hosts) == 1:
            return host_path(spec.work_dir / hosts[0], container_path)
        relative = container_path.strip("/").replace("/", "_")
        sources = (host_path(spec.work_dir / host, container_path) for host in merge_order(hosts))
        return merge_trees(sources, spec.work_dir / "outputs" / relative)

    def _finish(self) -> JobOutcome:
        """Wait for the job and explain failures from the engine's view (while the containers still exist)."""
        outcome = self._job.wait()
        assert outcome is not None
        with self._lock:
            if self._outcome is None:
                self._outcome = self._explain(outcome)
                logger.info("job %s finished: %s", self._job.name, self._outcome.outcome.value)
            return self._outcome

    def finish_and_clean_up(self) -> None:
        """The run's own thread: once the job is explained, remove its containers and give its network back.

        Off the caller's path: :meth:`wait` returns as soon as the outcome is known
        (docs/images.md#job-networks-and-relays).
        """
        try:
            self._finish()
            removed = self._runtime.reaper.remove(self._containers.values())
            self._runtime.networks.give_back(self._network, containers_removed=removed)
        finally:
            self._cleaned_up.set()

    def _explain(self, outcome: JobOutcome) -> JobOutcome:
        hosts: list[HostResult] = []
        first_reason: str | None = None
        for host in outcome.hosts:
            if host.exit_code != 0:
                name, lines = self._containers[host.host], self._tail.lines(host.host)
                found = post_mortem(self._runtime.docker, name, host.host, host.exit_code, lines)
                if found.reason is not None:
                    host = dataclasses.replace(host, failure_reason=found.reason)  # noqa: PLW2901
                    first_reason = first_reason or found.reason
            hosts.append(host)
        reason = outcome.failure_reason
        if outcome.outcome is TrainingOutcome.FAILED and first_reason is not None:
            reason = first_reason
        return JobOutcome(outcome.outcome, tuple(hosts), reason)


def processing_command(spec: ProcessingSpec) -> tuple[Sequence[str] | None, Sequence[str] | None]:
    """The ``--entrypoint`` and arguments of a processing container.

    The control plane hands ``AppSpecification.ContainerEntrypoint`` + ``ContainerArguments`` to the processing
    runner (``image.command`` is ``python -m containers.processing``) as one argument list. The processing image's
    own ENTRYPOINT is that runner, and the framework images' entry runs such a command too; any other image (XGBoost,
    a user's) has neither, so there the first argument becomes ``--entrypoint``, as SageMaker does with
    ContainerEntrypoint.
    """
    runner = tuple(spec.image.command[-2:]) == ("-m", PROCESSING_RUNNER)
    if (
        spec.entrypoint
        or not spec.arguments
        or not runner
        or container_name(spec.image.uri) in COMMAND_RUNNING_CONTAINERS
    ):
        return spec.entrypoint, spec.arguments
    return spec.arguments[:1], spec.arguments[1:]


class _ProcessingRun:
    """Adapts :class:`DockerJobRun` to :class:`~infra.runtime.api.ProcessingRun`."""

    def __init__(self, run: DockerJobRun) -> None:
        self.run = run

    def wait(self) -> ProcessingResult:
        return self.run.wait_processing()

    def stop(self) -> None:
        self.run.stop()

    @property
    def containers(self) -> tuple[str, ...]:
        return self.run.containers


class DockerRuntime:
    """Runs SageMaker containers with the local Docker engine. ``memory_limit`` (e.g. ``"2g"``) caps each one."""

    def __init__(
        self,
        data_dir: Path,
        *,
        settings: RuntimeSettings | None = None,
        docker: DockerCli | None = None,
        stop_grace_seconds: float | None = None,
        memory_limit: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.settings = RuntimeSettings.resolve(settings, stop_grace_seconds)
        self.docker = docker if docker is not None else DockerCli()
        self.memory_limit = memory_limit
        self.runtime_id = secrets.token_hex(6)
        self._lock = threading.Lock()
        self._runs: list[DockerJobRun] = []
        self._servers: list[DockerServingContainer] = []
        self.reaper = LeftoverReaper(self.docker)
        self.networks = JobNetworks(self.docker, self.reaper, f"{LABEL_MANAGED}={self.runtime_id}")
        data_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.shutdown)

    def start_training(self, spec: TrainingSpec, on_log: LogCallback | None = None) -> DockerJobRun:
        image = local_image(self.docker, spec.image)
        hosts = host_names(spec.instance_count)
        if (spec.work_dir / "artifacts").exists():
            shutil.rmtree(spec.work_dir / "artifacts")
        platform = {"TRAINING_JOB_NAME": spec.job_name, "SAGEMAKER_HTTP_PORT": "8080"}
        commands = {}
        for host in hosts:
            layout = lay_out_training_host(spec, host, hosts, CONTAINER_ROOT, self.settings.link_inputs)
            mounts = {str(CONTAINER_ROOT): layout.root, **layout.binds}
            commands[host] = (mounts, self._environment(spec.image, platform, spec.environment))
        return self._start_job(spec, image, commands, Entry.TRAIN, spec.entrypoint, spec.arguments, on_log)

    def start_processing(self, spec: ProcessingSpec, on_log: LogCallback | None = None) -> _ProcessingRun:
        image = local_image(self.docker, spec.image)
        hosts = host_names(spec.instance_count)
        if (spec.work_dir / "outputs").exists():
            shutil.rmtree(spec.work_dir / "outputs")
        commands = {}
        for host in hosts:
            layout = lay_out_processing_host(spec, host, hosts, self.settings.link_inputs)
            commands[host] = ({str(CONTAINER_ROOT): layout.root}, self._environment(spec.image, {}, spec.environment))
        entrypoint, arguments = processing_command(spec)
        run = self._start_job(spec, image, commands, None, entrypoint, arguments, on_log)
        return _ProcessingRun(run)

    def start_serving(
        self, spec: ServingSpec, on_log: LogCallback | None = None, host_port: int | None = None
    ) -> DockerServingContainer:
        image = local_image(self.docker, spec.image)
        forced = {"SAGEMAKER_BIND_TO_ADDRESS": "0.0.0.0", "SAGEMAKER_BIND_TO_PORT": "8080"}
        environment = {**self._environment(spec.image, {}, spec.environment), **forced}
        container = DockerServingContainer.start(
            self, spec, image, environment, on_log, host_port, self.settings.serving_stop_grace_seconds
        )
        with self._lock:
            self._servers.append(container)
        return container

    def command(self, host: str, job: str, image: str, **fields: object) -> ContainerCommand:
        """A :class:`ContainerCommand` labelled with this runtime's id (used by the serving container too)."""
        memory = {"memory_limit": self.memory_limit} if self.memory_limit else {}
        return ContainerCommand(
            name=docker_name(job, host), image=image, host=host, runtime_id=self.runtime_id, job=job,
            **memory, **fields,  # type: ignore[arg-type]
        )  # fmt: skip

    def release_warm_pool(self, pool: str) -> None:
        """Docker containers are not kept warm: a pool's next job starts a fresh one (docs/performance.md)."""

    def shutdown(self) -> None:
        """Stop every job and server, then remove whatever container or network this runtime still owns."""
        with self._lock:  # taken over: a second shutdown (atexit after an explicit one) has nothing left to stop
            runs, servers = list(self._runs), list(self._servers)
            self._runs, self._servers = [], []
        grace = self.settings.shutdown_grace_seconds
        for run in runs:
            if run.is_running():
                run.stop(grace_seconds=grace)
        for server in servers:
            server.stop(grace_seconds=grace)
        for run in runs:
            run.join(timeout=grace + 10.0)
        self.networks.close()
        self._remove_leftovers()
        self.reaper.close()

    def _start_job(
        self,
        spec: TrainingSpec | ProcessingSpec,
        image: str,
        hosts: Mapping[str, tuple[Mapping[str, Path], Mapping[str, str]]],
        entry: Entry | None,
        entrypoint: Sequence[str] | None,
        arguments: Sequence[str] | None,
        on_log: LogCallback | None,
    ) -> DockerJobRun:
        network = self.networks.lease()
        launches, names = [], {}
        tail = LogTail(on_log)
        try:
            client_environment = self.docker.client_environment()
            for host, (mounts, platform_environment) in hosts.items():
                environment = self._relayed(platform_environment, network)
                command = self.command(
                    host, spec.job_name, image, network=network.name, mounts=mounts, environment=environment
                )
                names[host] = command.name
                argv = command.argv(self.docker, entry, entrypoint, arguments)
                launches.append(Launch(host, argv, client_environment, spec.work_dir / host))
            logger.info("starting job %s in Docker (%s) on %s", spec.job_name, image, ", ".join(hosts))
            job = Job(spec.job_name, launches, tail, spec.max_runtime_seconds, self.settings.stop_grace_seconds)
        except BaseException:
            self.reaper.remove(names.values())
            self.networks.give_back(network, containers_removed=False)  # a half-started job's network is not reused
            raise
        run = DockerJobRun(self, job, names, network, tail, spec)
        threading.Thread(target=run.finish_and_clean_up, name=f"sagestack-docker-{spec.job_name}", daemon=True).start()
        with self._lock:
            self._runs = [other for other in self._runs if other.is_running()] + [run]
        return run

    @staticmethod
    def _relayed(environment: Mapping[str, str], network: JobNetwork) -> Mapping[str, str]:
        """Loopback endpoint URLs pointed at a relay on the network's gateway; unchanged without a usable gateway."""
        gateway = network.gateway
        if gateway is None:
            return environment
        try:
            return relay_environment(environment, gateway, network.relays)
        except OSError as exc:  # e.g. rootless Docker: the gateway is not an address of this host
            logger.warning("cannot relay the stack on %s (%s): containers see loopback endpoint URLs", gateway, exc)
            return environment

    def _environment(
        self, image: ContainerImage, platform: Mapping[str, str], user: Mapping[str, str]
    ) -> dict[str, str]:
        """SageMaker's platform variables < the spec's environment (the image brings its own ENV)."""
        return {"AWS_REGION": self.settings.region, **image.environment, **platform, **user}

    def _remove_leftovers(self) -> None:
        label = f"label={LABEL_MANAGED}={self.runtime_id}"
        try:
            containers = self.docker.run("ps", "-aq", "--filter", label, check=False).stdout.split()
            networks = self.docker.run("network", "ls", "-q", "--filter", label, check=False).stdout.split()
        except Exception as exc:  # the engine may be gone at interpreter exit
            logger.debug("cannot list leftovers: %s", exc)
            return
        if containers:
            logger.info("removing %d leftover container(s)", len(containers))
            self.docker.remove_containers(containers)
        for network in networks:
            self.docker.remove_network(network)
