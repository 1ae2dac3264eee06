"""Running endpoint deployments: the model's serving containers per variant instance, weighted routing."""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from pathlib import Path

from infra.control_plane.core.aws_services import LogsAccess, S3Access
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.execution.container_host import ContainerHost
from infra.control_plane.execution.model_data import ModelDataError
from infra.control_plane.hosting.data_capture import CaptureConfig
from infra.control_plane.hosting.endpoint_configs import EndpointConfig
from infra.control_plane.hosting.endpoint_supervisor import EndpointSupervisor
from infra.control_plane.hosting.hosting_requests import ProductionVariant
from infra.control_plane.hosting.models import Models
from infra.control_plane.hosting.multi_model import DEFAULT_CAPACITY, ModelCache
from infra.control_plane.hosting.serverless import ServerlessCapacity
from infra.control_plane.hosting.serving_chain import (
    PreparedContainer,
    ServingProcess,
    connection_pool,
    prepare_containers,
)
from infra.runtime.api import ContainerRuntimeError, LogLine, ServingContainer, ServingSpec

logger = logging.getLogger(__name__)

__all__ = [
    "Deployer",
    "Deployment",
    "DeploymentError",
    "HostingContext",
    "Instance",
    "Variant",
    "connection_pool",
    "stop_all",
]


class DeploymentError(Exception):
    """A variant could not be started; the message becomes the endpoint's FailureReason."""


@dataclass
class Instance:
    """One variant instance: the model's containers (several for an inference pipeline), in request order."""

    instance_id: str
    log_stream: str
    processes: list[ServingProcess]
    models: ModelCache | None = None  # a multi-model container's loaded models
    direct: bool = False  # InferenceExecutionConfig Direct: a request names its container

    @property
    def container(self) -> ServingContainer:
        return self.processes[0].container

    @property
    def restarts(self) -> int:
        return sum(process.restarts for process in self.processes)

    def is_alive(self) -> bool:
        return all(process.container.is_alive() for process in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            try:
                process.container.stop()
            finally:
                process.pool.close()


@dataclass
class Variant:
    name: str
    weight: float
    image: str
    instances: list[Instance]
    resolved_at: datetime = field(default_factory=utcnow)
    serverless: ServerlessCapacity[Instance] | None = None
    _next: count[int] = field(default_factory=count)
    # notified when a dead instance's replacement answers (or the deployment stops)
    replaced: threading.Condition = field(default_factory=threading.Condition)

    def pick(self) -> Instance:
        """Round-robin over the live instances (a dead one is skipped while it restarts); a serverless variant's
        first request starts its instance."""
        if self.serverless is not None:
            return self.serverless.started()
        start = next(self._next)
        for offset in range(len(self.instances)):
            instance = self.instances[(start + offset) % len(self.instances)]
            if instance.is_alive():
                return instance
        return self.instances[start % len(self.instances)]

    @property
    def serves(self) -> bool:
        return bool(self.instances) or self.serverless is not None

    def wait_live(self, seconds: float, stopped: threading.Event) -> Instance | None:
        """A live instance, waiting up to ``seconds`` for a replacement when every one is dead (None: none came)."""
        with self.replaced:
            self.replaced.wait_for(lambda: stopped.is_set() or any(i.is_alive() for i in self.instances), seconds)
        if stopped.is_set():
            return None
        instance = self.pick()
        return instance if instance.is_alive() else None

    def notify_replaced(self) -> None:
        with self.replaced:
            self.replaced.notify_all()


@dataclass
class Deployment:
    config_name: str
    variants: list[Variant]
    log_group: str
    capture: CaptureConfig | None = None
    work_dir: Path | None = None  # the endpoint working files (models, each instance's /opt/ml)
    stopped: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)  # stop() against a supervisor swapping a container
    # set by InvokeEndpoint when it finds a container dead: the supervisor looks at once instead of at its next tick
    dead_seen: threading.Event = field(default_factory=threading.Event)
    # called once with a FailureReason when a dead serving container cannot be restarted (the endpoint fails)
    on_lost: Callable[[str], None] | None = None

    def choose(self, target: str | None) -> Variant | None:
        if target:
            return next((v for v in self.variants if v.name == target), None)
        if len(self.variants) == 1:
            return self.variants[0]  # whatever its weight, as below
        weights = [max(v.weight, 0.0) for v in self.variants]
        if sum(weights) <= 0:
            return self.variants[0] if self.variants else None
        return random.choices(self.variants, weights=weights, k=1)[0]

    def stop(self) -> None:
        with self.lock:
            self.stopped.set()
            instances = [instance for variant in self.variants for instance in variant.instances]
        self.dead_seen.set()
        for variant in self.variants:
            variant.notify_replaced()  # requests waiting for a replacement give up now
        for instance in instances:
            instance.stop()

    def halt_supervision(self) -> None:
        """Stack stop: no dead container is restarted from now on (the runtime stops the containers)."""
        with self.lock:
            self.stopped.set()
        self.dead_seen.set()


@dataclass(frozen=True)
class HostingContext:
    account_id: str
    region: str
    work_root: Path
    containers: ContainerHost
    s3: S3Access
    logs: LogsAccess
    startup_timeout_seconds: float
    restart_check_seconds: float = 0.1
    max_failed_restarts: int = 5
    multi_model_capacity: int = DEFAULT_CAPACITY  # models loaded at once per multi-model instance
    serverless_idle_seconds: float = 600.0  # a serverless instance without requests this long is stopped


class Deployer:
    """Builds a :class:`Deployment` for an endpoint config, stopping what it started if any variant fails."""

    def __init__(self, context: HostingContext, models: Models) -> None:
        self._ctx = context
        self._models = models
        self._lock = threading.Lock()
        self._deployments: list[Deployment] = []  # being deployed or running

    def working_dirs(self) -> set[Path]:
        """The folders of deployments being started or running (the retention sweep leaves them alone)."""
        with self._lock:
            self._deployments = [d for d in self._deployments if not d.stopped.is_set()]
            return {d.work_dir for d in self._deployments if d.work_dir is not None}

    def deploy(self, endpoint_name: str, config: EndpointConfig) -> Deployment:
        deploy_dir = self._ctx.work_root / endpoint_name / uuid.uuid4().hex[:8]
        capture = CaptureConfig.from_request(config.request.data_capture_config)
        deployment = Deployment(config.name, [], f"/aws/sagemaker/Endpoints/{endpoint_name}", capture, deploy_dir)
        with self._lock:
            self._deployments.append(deployment)
        try:
            for spec in config.variants:
                deployment.variants.append(self._start_variant(endpoint_name, spec, deploy_dir, deployment))
        except BaseException:
            deployment.stop()
            raise
        EndpointSupervisor(self._ctx, deployment).start()
        return deployment

    def _start_variant(
        self, endpoint: str, spec: ProductionVariant, deploy_dir: Path, deployment: Deployment
    ) -> Variant:
        variant_name = spec.variant_name
        model = self._models.store.find(spec.model_name or "")
        if model is None or not model.containers:
            raise DeploymentError(f"Could not find model {spec.model_name} for variant {variant_name}.")
        try:
            prepared = prepare_containers(
                self._ctx.containers, self._ctx.s3, self._ctx.region, model.containers, deploy_dir / variant_name
            )
        except (ContainerRuntimeError, ModelDataError) as exc:
            raise DeploymentError(str(exc)) from exc
        variant = Variant(variant_name, spec.initial_variant_weight, model.containers[0].image or "", [])
        start = _InstanceStarter(self._ctx, endpoint, variant_name, deploy_dir, deployment, prepared, model.direct)
        if spec.serverless_config is not None:

            def cold_start() -> Instance:  # once, under the capacity's lock
                instance = start(1)
                with deployment.lock:
                    variant.instances.append(instance)
                    stopped = deployment.stopped.is_set()
                if stopped:  # deleted while it started: Deployment.stop did not see it
                    instance.stop()
                return instance

            variant.serverless = ServerlessCapacity(spec.serverless_config, cold_start)
            return variant
        for index in range(spec.initial_instance_count or 1):
            variant.instances.append(start(index + 1))
        return variant


@dataclass(frozen=True)
class _InstanceStarter:
    """Starts one instance of a variant: every container of the model, in order."""

    ctx: HostingContext
    endpoint: str
    variant: str
    deploy_dir: Path
    deployment: Deployment
    prepared: Sequence[PreparedContainer]
    direct: bool

    def __call__(self, number: int) -> Instance:
        instance_id = f"i-{uuid.uuid4().hex[:17]}"
        stream = f"{self.variant}/{instance_id}"
        group = self.deployment.log_group

        def on_log(line: LogLine) -> None:
            self.ctx.logs.put(group, stream, [(int(line.timestamp.timestamp() * 1000), line.text)])

        self.ctx.logs.ensure_stream(group, stream)
        several = len(self.prepared) > 1
        processes: list[ServingProcess] = []
        try:
            for container in self.prepared:
                suffix = f"-{container.hostname}" if several else ""
                work_dir = self.deploy_dir / self.variant / instance_id
                serving = ServingSpec(
                    name=f"{self.endpoint}-{self.variant}-{number}{suffix}",
                    image=container.image,
                    work_dir=work_dir / container.hostname if several else work_dir,
                    model_dir=container.model_dir,
                    environment=container.environment,
                    startup_timeout_seconds=self.ctx.startup_timeout_seconds,
                )
                processes.append(self._start(serving, container.hostname, on_log))
        except BaseException:
            for process in processes:
                process.container.stop()
                process.pool.close()
            raise
        instance = Instance(instance_id, stream, processes, direct=self.direct)
        last = self.prepared[-1]
        if last.multi_model:
            models_dir = (processes[-1].spec.work_dir if processes[-1].spec else self.deploy_dir) / "models"
            capacity = self.ctx.multi_model_capacity
            instance.models = ModelCache(self.ctx.s3, last.model_data_url or "", processes[-1], models_dir, capacity)
        return instance

    def _start(self, serving: ServingSpec, hostname: str, on_log: Callable[[LogLine], None]) -> ServingProcess:
        try:
            container = self.ctx.containers.runtime.start_serving(serving, on_log)
        except ContainerRuntimeError as exc:
            which = "primary container" if hostname == "primary" else f"container {hostname}"
            raise DeploymentError(
                f"The {which} for production variant {self.variant} did not pass the ping health check: {exc}"
            ) from exc
        return ServingProcess(hostname, container, connection_pool(container.url), serving, on_log)


def stop_all(deployments: Sequence[Deployment | None], drain_seconds: float = 0.0) -> None:
    """Stop deployments in the background, after ``drain_seconds`` so requests in flight can finish."""

    def stop(deployment: Deployment) -> None:
        threading.Event().wait(drain_seconds)
        deployment.stop()

    for deployment in deployments:
        if deployment is not None:
            threading.Thread(target=stop, args=(deployment,), daemon=True).start()
