"""The runtime contract in Docker: train and serve the XGBoost image, distributed training, and faults."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

from infra.runtime.api import ChannelSpec, ContainerImage, ServingSpec, TrainingOutcome, TrainingSpec
from infra.runtime.docker import DockerRuntime
from infra.runtime.model_archive import pack_model, safe_extract
from tests.docker.conftest import binary_csv, eventually, running_containers

AWS_XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
HYPERPARAMETERS = {"objective": "binary:logistic", "num_round": "3", "max_depth": "3", "eval_metric": "auc"}


def xgboost_spec(tmp_path: Path, name: str, image: str, hosts: int = 1, **kwargs: object) -> TrainingSpec:
    channels = {}
    for index in range(1, hosts + 1):
        data = binary_csv(tmp_path / f"{name}-data-{index}" / "train.csv", seed=index)
        channels[f"algo-{index}"] = [ChannelSpec("train", data.parent, content_type="text/csv")]
    return TrainingSpec(
        job_name=name,
        image=ContainerImage(uri=image, command=()),
        work_dir=tmp_path / name,
        hyperparameters=HYPERPARAMETERS,
        channels=channels,
        instance_count=hosts,
        **kwargs,  # type: ignore[arg-type]
    )


def test_xgboost_trains_in_docker_streams_logs_and_leaves_nothing_running(
    docker_runtime: DockerRuntime, xgboost_image: str, tmp_path: Path
) -> None:
    lines: list[str] = []
    run = docker_runtime.start_training(
        xgboost_spec(tmp_path, "train-one", AWS_XGBOOST), lambda line: lines.append(line.text)
    )

    result = run.wait()

    assert result.outcome is TrainingOutcome.COMPLETED, result.failure_reason
    assert (result.model_dir / "xgboost-model").is_file()
    assert any("train-auc" in line for line in lines)
    assert eventually(lambda: running_containers(docker_runtime) == [])  # removed off the caller's path


def test_a_two_host_distributed_job_finds_its_peers_by_hostname(
    docker_runtime: DockerRuntime, xgboost_image: str, tmp_path: Path
) -> None:
    hosts: set[str] = set()
    spec = xgboost_spec(tmp_path, "train-two", xgboost_image, hosts=2)

    result = docker_runtime.start_training(spec, lambda line: hosts.add(line.host)).wait()

    assert result.outcome is TrainingOutcome.COMPLETED, result.failure_reason
    assert [host.exit_code for host in result.hosts] == [0, 0]
    assert hosts == {"algo-1", "algo-2"}
    assert (result.model_dir / "xgboost-model").is_file()
    config = json.loads((tmp_path / "train-two" / "algo-2" / "input/config/resourceconfig.json").read_text())
    assert config["hosts"] == ["algo-1", "algo-2"]


def test_the_trained_model_serves_on_loopback_only(
    docker_runtime: DockerRuntime, xgboost_image: str, tmp_path: Path
) -> None:
    result = docker_runtime.start_training(xgboost_spec(tmp_path, "train-serve", xgboost_image)).wait()
    model = tmp_path / "model"
    safe_extract(pack_model(result.model_dir, tmp_path / "model.tar.gz"), model)
    spec = ServingSpec("endpoint-a", ContainerImage(uri=xgboost_image, command=()), tmp_path / "serve", model)

    server = docker_runtime.start_serving(spec)
    try:
        request = urllib.request.Request(
            f"{server.url}/invocations", data=b"0.5,0.5,0,0\n-2,-2,0,0\n", headers={"Content-Type": "text/csv"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            scores = [float(value) for value in response.read().decode().replace("\n", ",").split(",") if value]
        assert len(scores) == 2 and scores[0] > scores[1]
        assert server.url.startswith("http://127.0.0.1:")
        ports = json.loads(
            __import__("subprocess").run(
                ["docker", "inspect", "--format", "{{json .HostConfig.PortBindings}}", server.name],
                capture_output=True, text=True, check=True,
            ).stdout
        )  # fmt: skip
        assert all(binding["HostIp"] == "127.0.0.1" for binding in ports["8080/tcp"])
    finally:
        server.stop(grace_seconds=1.0)
    assert not server.is_alive()
    assert running_containers(docker_runtime) == []


def test_stop_sends_sigterm_and_removes_the_containers(
    docker_runtime: DockerRuntime, xgboost_image: str, tmp_path: Path
) -> None:
    started = threading.Event()
    spec = xgboost_spec(
        tmp_path,
        "train-stop",
        xgboost_image,
        entrypoint=["python", "-c", "print('up', flush=True); import time; time.sleep(60)"],
    )
    run = docker_runtime.start_training(spec, lambda line: started.set() if line.text == "up" else None)
    assert started.wait(60)

    run.stop()
    result = run.wait()

    assert result.outcome is TrainingOutcome.STOPPED
    assert result.hosts[0].exit_code in (137, 143)
    assert eventually(lambda: running_containers(docker_runtime) == [])
