"""The endpoint supervisor restarts dead serving containers, and fails the deployment when it cannot."""

import threading
from pathlib import Path
from types import SimpleNamespace

from infra.control_plane.hosting.endpoint_deployer import (
    Deployment,
    HostingContext,
    Instance,
    Variant,
    connection_pool,
)
from infra.control_plane.hosting.endpoint_supervisor import EndpointSupervisor
from infra.control_plane.hosting.serving_chain import ServingProcess
from infra.runtime.api import ContainerRuntimeError, ServingSpec


class _Container:
    def __init__(self, alive: bool) -> None:
        self.alive, self.url, self.stopped = alive, "http://127.0.0.1:1", False

    def connect_unix(self) -> None:
        return None

    def is_alive(self) -> bool:
        return self.alive

    def stop(self) -> None:
        self.stopped = True


class _Runtime:
    """Fails the first ``failures`` starts with the engine's error, then starts healthy containers."""

    def __init__(self, failures: int) -> None:
        self.failures, self.starts = failures, 0

    def start_serving(self, spec, on_log=None):
        self.starts += 1
        if self.starts <= self.failures:
            raise ContainerRuntimeError("the Docker engine is not reachable")
        return _Container(alive=True)


def _deployment(runtime: _Runtime, tmp_path: Path, max_failed: int = 3):
    context = HostingContext(
        account_id="123456789012",
        region="us-east-1",
        work_root=tmp_path,
        containers=SimpleNamespace(runtime=runtime),
        s3=None,
        logs=None,
        startup_timeout_seconds=1.0,
        restart_check_seconds=0.01,
        max_failed_restarts=max_failed,
    )
    spec = ServingSpec("serve-1", None, tmp_path, None)
    process = ServingProcess("primary", _Container(alive=False), connection_pool("http://127.0.0.1:1"), spec)
    instance = Instance("i-1", "stream", [process])
    deployment = Deployment("config-1", [Variant("AllTraffic", 1.0, "image", [instance])], "/aws/sagemaker/x")
    lost: list[str] = []
    done = threading.Event()
    deployment.on_lost = lambda reason: (lost.append(reason), deployment.stop(), done.set())
    return context, deployment, instance, lost, done


def test_a_container_that_cannot_be_restarted_fails_the_deployment_with_the_reason(tmp_path):
    runtime = _Runtime(failures=100)
    context, deployment, _, lost, done = _deployment(runtime, tmp_path)
    EndpointSupervisor(context, deployment).start()
    assert done.wait(10)
    assert runtime.starts == 3
    assert len(lost) == 1
    assert "variant AllTraffic" in lost[0] and "after 3 attempts" in lost[0] and "engine is not reachable" in lost[0]
    assert deployment.stopped.is_set()


def test_a_restart_that_succeeds_before_the_limit_resets_the_count(tmp_path):
    runtime = _Runtime(failures=2)
    context, deployment, instance, lost, _ = _deployment(runtime, tmp_path)
    EndpointSupervisor(context, deployment).start()
    try:
        deadline = threading.Event()
        for _ in range(500):
            if instance.restarts == 1:
                break
            deadline.wait(0.01)
        assert instance.restarts == 1 and instance.processes[0].failed_restarts == 0
        assert instance.container.is_alive()
        assert lost == []
    finally:
        deployment.stop()
