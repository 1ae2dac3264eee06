"""Running endpoint deployments: one serving container per variant instance, weighted routing."""

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
from urllib.parse import urlsplit

import urllib3

from infra.control_plane.core.aws_services import LogsAccess, S3Access
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.execution.container_host import ContainerHost
from infra.control_plane.execution.model_data import ModelDataError, fetch_model
from infra.control_plane.hosting.data_capture import CaptureConfig
from infra.control_plane.hosting.endpoint_configs import EndpointConfig
from infra.control_plane.hosting.hosting_requests import ContainerDefinition, ProductionVariant
from infra.control_plane.hosting.models import Models
from infra.runtime.api import ContainerRuntimeError, LogCallback, LogLine, ServingContainer, ServingSpec

logger = logging.getLogger(__name__)


class DeploymentError(Exception):
    """A variant could not be started; the message becomes the endpoint's FailureReason."""


@dataclass
class Instance:
    instance_id: str
    container: ServingContainer
    pool: urllib3.HTTPConnectionPool
    log_stream: str
    spec: ServingSpec | None = None
    on_log: LogCallback | None = None
    restarts: int = 0
    failed_restarts: int = 0  # consecutive failed restart attempts


@dataclass
class Variant:
    name: str
    weight: float
    image: str
    instances: list[Instance]
    resolved_at: datetime = field(default_factory=utcnow)
    _next: count[int] = field(default_factory=count)
    # notified when a dead instance's replacement answers (or the deployment stops)
    replaced: threading.Condition = field(default_factory=threading.Condition)

    def pick(self) -> Instance:
        """Round-robin over the instances whose container is alive (a dead one is skipped while it restarts)."""
        start = next(self._next)
        for offset in range(len(self.instances)):
            instance = self.instances[(start + offset) % len(self.instances)]
            if instance.container.is_alive():
                return instance
        return self.instances[start % len(self.instances)]

    def wait_live(self, seconds: float, stopped: threading.Event) -> Instance | None:
        """A live instance, waiting up to ``seconds`` for a replacement when every one is dead (None: none came)."""
        with self.replaced:
            self.replaced.wait_for(
                lambda: stopped.is_set() or any(i.container.is_alive() for i in self.instances), seconds
            )
        if stopped.is_set():
            return None
        instance = self.pick()
        return instance if instance.container.is_alive() else None

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
            try:
                instance.container.stop()
            finally:
                instance.pool.close()

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
        _Supervisor(self._ctx, deployment).start()
        return deployment

    def _start_variant(
        self, endpoint: str, spec: ProductionVariant, deploy_dir: Path, deployment: Deployment
    ) -> Variant:
        variant_name = spec.variant_name
        model = self._models.store.find(spec.model_name or "")
        if model is None or not model.containers:
            raise DeploymentError(f"Could not find model {spec.model_name} for variant {variant_name}.")
        container_def = model.containers[0]
        image_uri = container_def.image or ""
        try:
            image = self._ctx.containers.resolve(image_uri)
        except ContainerRuntimeError as exc:
            raise DeploymentError(str(exc)) from exc
        model_dir = self._model_dir(container_def, deploy_dir / variant_name)
        variant = Variant(variant_name, spec.initial_variant_weight, image_uri, [])
        environment = {**self._ctx.containers.role_environment(self._ctx.region), **container_def.environment}
        for index in range(spec.initial_instance_count or 1):
            instance_id = f"i-{uuid.uuid4().hex[:17]}"
            serving = ServingSpec(
                name=f"{endpoint}-{variant_name}-{index + 1}",
                image=image,
                work_dir=deploy_dir / variant_name / instance_id,
                model_dir=model_dir,
                environment=environment,
                startup_timeout_seconds=self._ctx.startup_timeout_seconds,
            )
            variant.instances.append(self._start_instance(serving, deployment, variant_name, instance_id))
        return variant

    def _start_instance(
        self, serving: ServingSpec, deployment: Deployment, variant_name: str, instance_id: str
    ) -> Instance:
        stream = f"{variant_name}/{instance_id}"
        group = deployment.log_group

        def on_log(line: LogLine) -> None:
            self._ctx.logs.put(group, stream, [(int(line.timestamp.timestamp() * 1000), line.text)])

        self._ctx.logs.ensure_stream(group, stream)
        try:
            container = self._ctx.containers.runtime.start_serving(serving, on_log)
        except ContainerRuntimeError as exc:
            raise DeploymentError(
                f"The primary container for production variant {variant_name} did not pass the ping health check: {exc}"
            ) from exc
        return Instance(instance_id, container, connection_pool(container.url), stream, serving, on_log)

    def _model_dir(self, container_def: ContainerDefinition, variant_dir: Path) -> Path | None:
        try:
            return fetch_model(self._ctx.s3, container_def.model_data_url, variant_dir)
        except ModelDataError as exc:
            raise DeploymentError(str(exc)) from exc


def connection_pool(url: str) -> urllib3.HTTPConnectionPool:
    """Kept-alive connections to one container (``block=False``: bursts open extra connections)."""
    parts = urlsplit(url)
    return urllib3.HTTPConnectionPool(parts.hostname or "127.0.0.1", parts.port, maxsize=32, block=False, retries=False)


class _Supervisor:
    """Restarts a deployment's serving containers that died, until the deployment is stopped."""

    def __init__(self, context: HostingContext, deployment: Deployment) -> None:
        self._ctx = context
        self._deployment = deployment

    def start(self) -> None:
        threading.Thread(target=self._watch, name="sagestack-endpoint-supervisor", daemon=True).start()

    def _watch(self) -> None:
        deployment = self._deployment
        while not deployment.stopped.is_set():
            deployment.dead_seen.wait(self._ctx.restart_check_seconds)
            deployment.dead_seen.clear()
            for variant in self._deployment.variants:
                for instance in variant.instances:
                    if not instance.container.is_alive() and not self._deployment.stopped.is_set():
                        reason = self._restart(variant, instance)
                        if reason is not None:
                            self._lose(reason)
                            return

    def _restart(self, variant: Variant, instance: Instance) -> str | None:
        """Restart a dead container; a FailureReason once it failed ``max_failed_restarts`` times in a row."""
        if instance.spec is None or self._deployment.stopped.is_set():
            return None
        logger.warning("serving container %s died; restarting it", instance.spec.name)
        try:
            container = self._ctx.containers.runtime.start_serving(instance.spec, instance.on_log)
        except ContainerRuntimeError as exc:
            if self._deployment.stopped.is_set():  # the stack is stopping: the runtime refuses new containers
                return None
            instance.failed_restarts += 1
            logger.warning("restarting %s failed (%d in a row): %s", instance.spec.name, instance.failed_restarts, exc)
            if instance.failed_restarts < self._ctx.max_failed_restarts:
                return None
            return (
                f"The serving container of variant {variant.name} ({instance.instance_id}) stopped and could not be "
                f"restarted after {instance.failed_restarts} attempts: {exc}"
            )
        with self._deployment.lock:
            stopped = self._deployment.stopped.is_set()
            if not stopped:
                old_pool = instance.pool
                instance.container, instance.pool = container, connection_pool(container.url)
                instance.restarts += 1
                instance.failed_restarts = 0
        if stopped:  # stopped while this one started: Deployment.stop did not see it
            container.stop()
            return None
        variant.notify_replaced()
        old_pool.close()
        return None

    def _lose(self, reason: str) -> None:
        logger.error("deployment %s lost: %s", self._deployment.config_name, reason)
        if self._deployment.on_lost is not None:
            self._deployment.on_lost(reason)
        else:
            self._deployment.stop()


def stop_all(deployments: Sequence[Deployment | None], drain_seconds: float = 0.0) -> None:
    """Stop deployments in the background, after ``drain_seconds`` so requests in flight can finish."""

    def stop(deployment: Deployment) -> None:
        threading.Event().wait(drain_seconds)
        deployment.stop()

    for deployment in deployments:
        if deployment is not None:
            threading.Thread(target=stop, args=(deployment,), daemon=True).start()
