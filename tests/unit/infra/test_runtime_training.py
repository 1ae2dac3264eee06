from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from infra.runtime.api import (
    ChannelSpec,
    ContainerImage,
    ContainerRuntimeError,
    Entry,
    IsolationMode,
    TrainingOutcome,
    TrainingSpec,
)
from infra.runtime.process.jobs import container_argv
from infra.runtime.process.process_runtime import ProcessRuntime
from tests.unit.infra.support import LogCollector, pid_gone


def training_spec(
    image: ContainerImage, work_dir: Path, hyperparameters: Mapping[str, str] | None = None, **kwargs: object
) -> TrainingSpec:
    source = work_dir.parent / f"{work_dir.name}-source"
    source.mkdir(parents=True, exist_ok=True)
    (source / "train.csv").write_text("1,2\n")
    count = int(kwargs.pop("instance_count", 1))  # type: ignore[call-overload]
    channels = {f"algo-{i}": [ChannelSpec("train", source, content_type="text/csv")] for i in range(1, count + 1)}
    return TrainingSpec(
        job_name=work_dir.name,
        image=image,
        work_dir=work_dir,
        hyperparameters=dict(hyperparameters or {}),
        channels=channels,
        instance_count=count,
        **kwargs,  # type: ignore[arg-type]
    )


def read_json(path: Path) -> object:
    return json.loads(path.read_text())


def test_training_completes_streams_logs_and_collects_the_model(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path, logs: LogCollector
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-ok", {"dump_env": "1"}, environment={"MY_VAR": "x"})

    result = runtime.start_training(spec, logs).wait()

    assert result.outcome is TrainingOutcome.COMPLETED
    assert result.failure_reason is None
    assert [(h.host, h.exit_code) for h in result.hosts] == [("algo-1", 0)]
    assert (result.model_dir / "model.txt").read_text() == "trained by algo-1"
    assert read_json(result.output_data_dir / "algo-1-channels.json") == {"train": ["train.csv"]}
    streams = {(line.host, line.stream, line.text) for line in logs.lines}
    assert ("algo-1", "stdout", "algo-1 starting; hosts=algo-1") in streams
    assert ("algo-1", "stderr", "algo-1 stderr line") in streams
    env = read_json(result.output_data_dir / "env-algo-1.json")
    assert isinstance(env, dict)
    assert env["TRAINING_JOB_NAME"] == "job-ok"
    assert env["SAGEMAKER_HTTP_PORT"] == "8080"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["MY_VAR"] == "x"
    assert env["AWS_REGION"]
    assert int(env["SAGESTACK_RABIT_PORT"]) > 0


def test_container_sees_the_job_dir_at_the_literal_opt_ml(
    namespaced: None, runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-literal", {"literal": "1", "dump_env": "1"})

    result = runtime.start_training(spec).wait()

    assert result.outcome is TrainingOutcome.COMPLETED
    assert (result.model_dir / "literal.txt").read_text().startswith("literal algo-1")
    assert not Path("/opt/ml/model/literal.txt").exists() or (
        Path("/opt/ml/model/literal.txt").read_text() != (result.model_dir / "literal.txt").read_text()
    )
    env = read_json(result.output_data_dir / "env-algo-1.json")
    assert isinstance(env, dict)
    assert env["SAGEMAKER_BASE_DIR"] == "/opt/ml"


def test_two_jobs_in_parallel_do_not_collide(
    namespaced: None, runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    specs = [
        training_spec(fake_image, tmp_path / f"job-{n}", {"literal": "1", "sleep": "0.3", "dump_env": "1"})
        for n in ("a", "b")
    ]

    runs = [runtime.start_training(spec) for spec in specs]
    results = [run.wait() for run in runs]

    literal = [(r.model_dir / "literal.txt").read_text() for r in results]
    assert all(r.outcome is TrainingOutcome.COMPLETED for r in results)
    assert literal[0] != literal[1]
    assert f"{runs[0].pids[0]}" in literal[0] and f"{runs[1].pids[0]}" in literal[1]
    ports = {read_json(r.output_data_dir / "env-algo-1.json")["SAGESTACK_RABIT_PORT"] for r in results}  # type: ignore[index]
    assert len(ports) == 2


def test_environment_fallback_points_sagemaker_base_dir_at_the_host_dir(
    env_runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-env", {"dump_env": "1"})

    result = env_runtime.start_training(spec).wait()

    assert env_runtime.isolation_mode is IsolationMode.ENVIRONMENT
    assert result.outcome is TrainingOutcome.COMPLETED
    env = read_json(result.output_data_dir / "env-algo-1.json")
    assert isinstance(env, dict)
    assert Path(env["SAGEMAKER_BASE_DIR"]) == (tmp_path / "job-env" / "algo-1").resolve()
    assert (result.model_dir / "model.txt").read_text() == "trained by algo-1"


def test_failure_file_becomes_the_failure_reason_and_the_model_is_not_collected(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-fail", {"fail": "1", "sleep": "0"})

    result = runtime.start_training(spec).wait()

    assert result.outcome is TrainingOutcome.FAILED
    assert result.failure_reason == "UserError: asked to fail by the fail hyperparameter"
    assert result.hosts[0].exit_code == 1
    assert list(result.model_dir.iterdir()) == []


def test_failure_without_a_failure_file_describes_the_exit(
    env_runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-exit", {"exit_code": "137"})

    result = env_runtime.start_training(spec).wait()

    assert result.outcome is TrainingOutcome.FAILED
    assert result.failure_reason == "AlgorithmError: process exited with code 137 (killed by SIGKILL)"


def test_max_runtime_stops_the_job_as_max_runtime_exceeded(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-slow", {"sleep": "60"}, max_runtime_seconds=1)

    result = runtime.start_training(spec).wait()

    assert result.outcome is TrainingOutcome.MAX_RUNTIME_EXCEEDED
    assert result.failure_reason is not None and "MaxRuntimeInSeconds" in result.failure_reason
    assert result.hosts[0].exit_code == 143
    assert list(result.model_dir.iterdir()) == []  # the half-written partial.txt is not reported


def test_sigkill_follows_sigterm_after_the_grace_period(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path, logs: LogCollector
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-stubborn", {"sleep": "60", "ignore_sigterm": "1"})

    run = runtime.start_training(spec, logs)
    assert logs.wait_for("sleeping")
    run.stop()
    result = run.wait()

    assert result.outcome is TrainingOutcome.STOPPED
    assert result.hosts[0].exit_code == 137


def test_stop_kills_the_whole_process_group(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path, logs: LogCollector
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-stop", {"sleep": "60", "spawn_child": "1"})

    run = runtime.start_training(spec, logs)
    assert logs.wait_for("sleeping")
    child_pid = int((tmp_path / "job-stop" / "algo-1" / "output/data/child-algo-1.pid").read_text())
    run.stop()
    result = run.wait()

    assert result.outcome is TrainingOutcome.STOPPED
    assert result.failure_reason is None
    assert pid_gone(run.pids[0])
    assert pid_gone(child_pid)


def test_a_container_that_saves_on_sigterm_keeps_its_model_when_stopped(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path, logs: LogCollector
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-save", {"sleep": "60", "save_on_sigterm": "1"})

    run = runtime.start_training(spec, logs)
    assert logs.wait_for("sleeping")
    run.stop()
    result = run.wait()

    assert result.outcome is TrainingOutcome.STOPPED
    assert result.hosts[0].exit_code == 0
    assert (result.model_dir / "model.txt").read_text() == "saved on SIGTERM by algo-1"


def test_two_hosts_run_and_resolve_each_other(
    namespaced: None, runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path, logs: LogCollector
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-dist", {"resolve": "1"}, instance_count=2)

    result = runtime.start_training(spec, logs).wait()

    assert result.outcome is TrainingOutcome.COMPLETED
    assert [h.host for h in result.hosts] == ["algo-1", "algo-2"]
    assert {line.host for line in logs.lines} == {"algo-1", "algo-2"}
    for host in ("algo-1", "algo-2"):
        assert read_json(result.output_data_dir / f"resolve-{host}.json") == {
            "algo-1": "127.0.0.1",
            "algo-2": "127.0.0.1",
        }
    assert (result.model_dir / "model.txt").read_text() == "trained by algo-1"  # the master's file wins
    assert {p.name for p in result.model_dir.iterdir()} == {"model.txt", "algo-1.txt", "algo-2.txt"}


def test_shutdown_stops_running_jobs(fake_image: ContainerImage, tmp_path: Path, logs: LogCollector) -> None:
    runtime = ProcessRuntime(tmp_path / "data", IsolationMode.ENVIRONMENT, stop_grace_seconds=60)
    spec = training_spec(fake_image, tmp_path / "job-shutdown", {"sleep": "60"})
    run = runtime.start_training(spec, logs)
    assert logs.wait_for("sleeping")

    runtime.shutdown()

    result = run.wait()
    assert result.outcome is TrainingOutcome.STOPPED
    assert pid_gone(run.pids[0])


IMAGE = ContainerImage(uri="x", command=("python", "-m", "containers.xgboost"))


@pytest.mark.parametrize(
    ("entrypoint", "arguments", "expected"),
    [
        (None, None, ["python", "-m", "containers.xgboost", "train"]),
        (["python3", "train.py"], None, ["python3", "train.py"]),
        (None, ["--epochs", "3"], ["python", "-m", "containers.xgboost", "--epochs", "3"]),
        (["python3", "train.py"], ["--epochs", "3"], ["python3", "train.py", "--epochs", "3"]),
    ],
)
def test_container_argv_follows_entrypoint_and_arguments_semantics(
    entrypoint: list[str] | None, arguments: list[str] | None, expected: list[str]
) -> None:
    assert container_argv(IMAGE, Entry.TRAIN, entrypoint, arguments) == expected


@pytest.mark.parametrize("mode", ["default", "environment"])
def test_checkpoint_dir_is_seen_at_local_path_and_written_through(
    mode: str, runtime: ProcessRuntime, env_runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "ckpt-previous.txt").write_text("epoch 0")
    spec = training_spec(
        fake_image,
        tmp_path / f"job-ckpt-{mode}",
        {"checkpoint": "1"},
        checkpoint_dir=checkpoints,
        checkpoint_s3_uri="s3://bucket/checkpoints",
    )

    result = (runtime if mode == "default" else env_runtime).start_training(spec).wait()

    assert result.outcome is TrainingOutcome.COMPLETED
    assert read_json(result.output_data_dir / "checkpoints-seen-algo-1.json") == ["ckpt-previous.txt"]
    assert (checkpoints / "ckpt-algo-1.txt").read_text() == "epoch 1"


def test_one_failing_host_fails_the_job_and_stops_the_others(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-half", {"fail_host": "algo-2", "sleep": "60"}, instance_count=2)

    result = runtime.start_training(spec).wait()

    assert result.outcome is TrainingOutcome.FAILED
    assert result.failure_reason == "UserError: algo-2 was told to fail"
    assert {h.host: h.exit_code for h in result.hosts} == {"algo-1": 143, "algo-2": 1}
    assert list(result.model_dir.iterdir()) == []


def test_a_command_that_cannot_start_raises_a_runtime_error(env_runtime: ProcessRuntime, tmp_path: Path) -> None:
    image = ContainerImage(uri="broken", command=(str(tmp_path / "no-such-binary"),))

    with pytest.raises(ContainerRuntimeError, match="cannot start algo-1"):
        env_runtime.start_training(training_spec(image, tmp_path / "job-broken"))


def test_the_images_interpreter_is_python_on_the_containers_path(
    env_runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    spec = training_spec(fake_image, tmp_path / "job-path", {"dump_env": "1"})

    result = env_runtime.start_training(spec).wait()

    env = read_json(result.output_data_dir / "env-algo-1.json")
    assert isinstance(env, dict)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
