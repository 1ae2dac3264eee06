"""Job networks are reused, never shared: a later job takes an idle one, a concurrent job gets its own, and a reused
network holds nothing of the job before it (docs/images.md#job-networks-and-relays)."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

from infra.runtime.api import TrainingOutcome
from infra.runtime.docker import DockerRuntime
from infra.runtime.docker.docker_networks import KEEP_IDLE_NETWORKS
from tests.docker.conftest import eventually
from tests.docker.test_runtime_contract import xgboost_spec

SLEEPER = ["python", "-c", "print('up', flush=True); import time; time.sleep(300)"]
# Exits 0 only when the name algo-2 (a host of the previous job on this network) no longer resolves.
PROBE = """
import socket
try:
    socket.gethostbyname("algo-2")
except OSError:
    print("algo-2 is gone", flush=True)
else:
    raise SystemExit("algo-2 of the previous job still resolves")
"""


def container_networks(container: str) -> set[str]:
    argv = ["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", container]
    return set(json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout))


def labelled_networks(runtime: DockerRuntime) -> set[str]:
    argv = ["docker", "network", "ls", "--format", "{{.Name}}", "--filter"]
    argv.append(f"label=org.sagestack.managed={runtime.runtime_id}")
    return set(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split())


def test_a_later_job_takes_the_idle_network_and_finds_nothing_of_the_job_before(
    docker_runtime: DockerRuntime, xgboost_image: str, tmp_path: Path
) -> None:
    two = xgboost_spec(tmp_path, "net-two", xgboost_image, hosts=2, entrypoint=["python", "-c", "pass"])
    first = docker_runtime.start_training(two).wait()
    assert first.outcome is TrainingOutcome.COMPLETED, first.failure_reason
    assert eventually(lambda: len(docker_runtime.networks.idle()) == 1)
    (network,) = docker_runtime.networks.idle()
    lines: list[str] = []

    run = docker_runtime.start_training(
        xgboost_spec(tmp_path, "net-one", xgboost_image, entrypoint=["python", "-c", PROBE]),
        lambda line: lines.append(line.text),
    )
    taken = docker_runtime.networks.idle()
    result = run.wait()

    assert taken == ()  # the job holds the network that was idle
    assert result.outcome is TrainingOutcome.COMPLETED, result.failure_reason
    assert "algo-2 is gone" in lines
    assert eventually(lambda: docker_runtime.networks.idle() == (network,))  # given back once its container went
    assert labelled_networks(docker_runtime) == {network}


def test_jobs_running_at_once_get_networks_of_their_own_and_few_are_kept(
    docker_runtime: DockerRuntime, xgboost_image: str, tmp_path: Path
) -> None:
    names = [f"side-{index}" for index in range(KEEP_IDLE_NETWORKS + 1)]
    up = {name: threading.Event() for name in names}
    runs = {
        name: docker_runtime.start_training(
            xgboost_spec(tmp_path, name, xgboost_image, entrypoint=SLEEPER),
            lambda line, name=name: up[name].set() if line.text == "up" else None,  # type: ignore[misc]
        )
        for name in names
    }
    try:
        assert all(event.wait(120) for event in up.values())
        networks = [container_networks(run.containers[0]) for run in runs.values()]
    finally:
        for run in runs.values():
            run.stop(grace_seconds=0.0)
    results = [run.wait() for run in runs.values()]

    assert all(result.outcome is TrainingOutcome.STOPPED for result in results)
    assert all(len(attached) == 1 for attached in networks)
    assert len(set.union(*networks)) == len(names)  # no two jobs ever share a network
    assert eventually(lambda: len(docker_runtime.networks.idle()) == KEEP_IDLE_NETWORKS)
    assert eventually(lambda: labelled_networks(docker_runtime) == set(docker_runtime.networks.idle()))
