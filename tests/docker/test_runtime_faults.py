"""Bad input and faults: each one fails with a reason that says which, and no container is left behind."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.runtime.api import ContainerImage, ImageNotFoundError, ServingSpec, TrainingOutcome
from infra.runtime.docker import DockerRuntime
from infra.runtime.docker.docker_cli import DockerCli, DockerUnavailableError
from infra.runtime.errors import ServingStartupError
from tests.docker.conftest import eventually, running_containers
from tests.docker.engine_proxy import EngineProxy
from tests.docker.test_runtime_contract import xgboost_spec


def test_an_image_that_does_not_exist_is_named(docker_runtime: DockerRuntime, tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="never pulls"):
        docker_runtime.start_training(xgboost_spec(tmp_path, "no-image", "example.com/nothing:here"))


def test_a_container_that_exits_at_start_fails_the_job_with_its_reason(
    docker_runtime: DockerRuntime, xgboost_image: str, tmp_path: Path
) -> None:
    spec = xgboost_spec(tmp_path, "bad-entry", xgboost_image, entrypoint=["/no/such/binary"])

    result = docker_runtime.start_training(spec).wait()

    assert result.outcome is TrainingOutcome.FAILED
    assert result.failure_reason is not None and "algo-1" in result.failure_reason
    assert "no/such/binary" in result.failure_reason
    assert eventually(lambda: running_containers(docker_runtime) == [])


def test_bad_hyperparameters_report_the_containers_failure_file(
    docker_runtime: DockerRuntime, xgboost_image: str, tmp_path: Path
) -> None:
    spec = xgboost_spec(tmp_path, "bad-hp", xgboost_image)
    spec = type(spec)(**{**spec.__dict__, "hyperparameters": {"num_round": "0"}})

    result = docker_runtime.start_training(spec).wait()

    assert result.outcome is TrainingOutcome.FAILED
    assert result.failure_reason is not None and result.failure_reason.startswith("ClientError")


def test_an_out_of_memory_kill_is_named(xgboost_image: str, tmp_path: Path) -> None:
    runtime = DockerRuntime(tmp_path / "runtime", stop_grace_seconds=2.0, memory_limit="64m")
    hog = "import numpy; x = numpy.ones(2_000_000_000 // 8)"
    try:
        result = runtime.start_training(
            xgboost_spec(tmp_path, "oom", xgboost_image, entrypoint=["python", "-c", hog])
        ).wait()
    finally:
        runtime.shutdown()

    assert result.outcome is TrainingOutcome.FAILED
    assert result.hosts[0].exit_code == 137
    assert result.failure_reason is not None and "out of memory" in result.failure_reason


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_already_in_use_is_named(
    docker_runtime: DockerRuntime, xgboost_image: str, tmp_path: Path, busy_port: int
) -> None:
    spec = ServingSpec("endpoint-busy", ContainerImage(uri=xgboost_image, command=()), tmp_path / "serve", None)

    with pytest.raises(ServingStartupError, match="already in use"):
        docker_runtime.start_serving(spec, host_port=busy_port)
    assert running_containers(docker_runtime) == []


def test_shutdown_leaves_no_container_running(xgboost_image: str, tmp_path: Path) -> None:
    runtime = DockerRuntime(tmp_path / "runtime", stop_grace_seconds=30.0)
    started = threading.Event()
    sleeper = ["python", "-c", "print('up', flush=True); import time; time.sleep(300)"]
    runtime.start_training(
        xgboost_spec(tmp_path, "shutdown", xgboost_image, entrypoint=sleeper),
        lambda line: started.set() if line.text == "up" else None,
    )
    assert started.wait(60)

    runtime.shutdown()

    assert running_containers(runtime) == []
    networks = subprocess.run(
        ["docker", "network", "ls", "-q", "--filter", f"label=org.sagestack.managed={runtime.runtime_id}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert networks == []


def test_the_engine_stopping_under_an_endpoint_is_named_and_its_container_goes_when_it_is_back(
    xgboost_image: str, xgboost_model_dir: Path, tmp_path: Path
) -> None:
    proxy = EngineProxy(tmp_path / "docker.sock")
    proxy.start()
    runtime = DockerRuntime(tmp_path / "runtime", docker=DockerCli(host=proxy.docker_host), stop_grace_seconds=2.0)
    image = ContainerImage(uri=xgboost_image, command=())
    spec = ServingSpec("endpoint-engine", image, tmp_path / "serve", xgboost_model_dir, startup_timeout_seconds=60.0)
    server = runtime.start_serving(spec)
    try:
        proxy.stop()
        assert eventually(lambda: not server.is_alive())  # the hosting layer restarts a dead container...
        with pytest.raises(DockerUnavailableError, match="engine is not reachable"):
            runtime.start_serving(spec)  # ...which fails, naming the engine, while it is down
        server.stop(grace_seconds=0.0)
    finally:
        proxy.start()
    assert eventually(lambda: running_containers(runtime) == [])  # removed once the engine answers again
    runtime.shutdown()
    proxy.stop()
