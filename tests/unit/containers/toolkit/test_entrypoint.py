"""Contract tests: success/failure signalling of the training entry point (entrypoint.py,
docs/reference/container-contract.md#exit-codes-and-failure)."""

from __future__ import annotations

import re
import signal
import subprocess
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from containers.toolkit import entrypoint
from containers.toolkit.entrypoint import (
    EXIT_TERMINATED,
    ContainerEntry,
    ExitMessage,
    main_for,
    run_container,
    run_training,
)
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.errors import AlgorithmError, UserError
from tests.unit.containers.toolkit.conftest import PYTHON, REPO_ROOT, make_tree, subprocess_env, write_config

pytestmark = pytest.mark.usefixtures("restore_process_state")


@pytest.fixture
def base(ml_base: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_tree(ml_base, hyperparameters={"num_round": "3"}, channels={"train": {}})
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(ml_base))
    return ml_base


def _write_partial_model(env: TrainingEnvironment) -> None:
    (env.paths.model_dir / "xgboost-model").write_text("half")
    (env.paths.model_dir / "sub").mkdir()
    (env.paths.model_dir / "sub" / "part").write_text("half")


def test_success_writes_the_success_file_and_keeps_the_model(base: Path) -> None:
    seen: dict[str, str] = {}

    def train(env: TrainingEnvironment) -> None:
        seen.update(env.hyperparameters)
        (env.paths.model_dir / "model.bin").write_text("ok")

    assert run_training(train) == 0
    assert seen == {"num_round": "3"}
    assert (base / "output" / "success").read_text() == ""
    assert not (base / "output" / "failure").exists()
    assert (base / "model" / "model.bin").read_text() == "ok"


def test_user_error_writes_its_kind_exits_1_and_empties_the_model_dir(base: Path) -> None:
    def train(env: TrainingEnvironment) -> None:
        _write_partial_model(env)
        raise UserError("Hyperparameter eta: value 2 not in range [0, 1]")

    assert run_training(train) == 1
    assert (base / "output" / "failure").read_text() == "ClientError: Hyperparameter eta: value 2 not in range [0, 1]"
    assert list((base / "model").iterdir()) == []
    assert not (base / "output" / "success").exists()


def test_algorithm_error_exits_2(base: Path) -> None:
    def train(env: TrainingEnvironment) -> None:
        raise AlgorithmError("tracker failed")

    assert run_training(train) == 2
    assert (base / "output" / "failure").read_text() == "AlgorithmError: tracker failed"


def test_unexpected_exception_is_an_algorithm_error_with_traceback(base: Path) -> None:
    def train(env: TrainingEnvironment) -> None:
        _write_partial_model(env)
        raise ValueError("boom")

    assert run_training(train) == 2
    text = (base / "output" / "failure").read_text()
    assert text.startswith("AlgorithmError: ValueError: boom\n")
    assert "Traceback" in text and 'raise ValueError("boom")' in text
    assert list((base / "model").iterdir()) == []


def test_bad_config_file_is_a_user_error(base: Path) -> None:
    write_config(base, "resourceconfig.json", "{oops")
    assert run_training(lambda env: None) == 1
    assert re.match(r"ClientError: .*resourceconfig\.json is not valid JSON", (base / "output" / "failure").read_text())


def test_first_failure_writer_wins(base: Path) -> None:
    def train(env: TrainingEnvironment) -> None:
        env.paths.failure_file.write_text("written by the user script")
        raise UserError("later")

    assert run_training(train) == 1
    assert (base / "output" / "failure").read_text() == "written by the user script"


def test_failure_file_directory_is_created(ml_base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(ml_base))  # nothing laid out at all

    def train(env: TrainingEnvironment) -> None:
        raise UserError("no data")

    assert run_training(train) == 1
    assert (ml_base / "output" / "failure").read_text() == "ClientError: no data"


def test_log_format_is_the_built_in_one(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def train(env: TrainingEnvironment) -> None:
        entrypoint.logger.info("hello %s", "world")

    assert run_training(train) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"^\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d INFO containers\.toolkit\.entrypoint\] hello world$", out, re.M
    )


def test_main_for_dispatches_train_and_serve(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    assert main_for(lambda env: calls.append("train"), lambda: 0, ["train"]) == 0
    assert main_for(lambda env: calls.append("train-default"), lambda: 0, []) == 0

    def serve() -> int:
        calls.append("serve")
        return 7

    assert main_for(lambda env: None, serve, ["serve"]) == 7
    assert calls == ["train", "train-default", "serve"]
    assert main_for(lambda env: None, lambda: 0, ["predict"]) == 2
    assert "unknown command 'predict'" in capsys.readouterr().err


SLEEPING_TRAINER = textwrap.dedent(
    """
    import sys, time
    from containers.toolkit.entrypoint import run_training

    def train(env):
        (env.paths.model_dir / "checkpoint-1").write_text("saved")
        (env.paths.output_dir / "started").write_text("yes")
        time.sleep(60)

    sys.exit(run_training(train))
    """
)


def _wait_for(path: Path, process: subprocess.Popen[bytes], deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"child never reached {path.name}: rc={process.returncode} {out!r} {err!r}")
        time.sleep(0.02)


def test_sigterm_stops_training_with_143_and_a_failure_file(ml_base: Path) -> None:
    make_tree(ml_base, hyperparameters={}, channels={"train": {}})
    process = subprocess.Popen(
        [PYTHON, "-c", SLEEPING_TRAINER],
        cwd=REPO_ROOT,
        env=subprocess_env(SAGEMAKER_BASE_DIR=str(ml_base)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for(ml_base / "output" / "started", process)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == EXIT_TERMINATED == 143
    assert "Training stopped by SIGTERM" in (ml_base / "output" / "failure").read_text()
    assert (ml_base / "model" / "checkpoint-1").read_text() == "saved"  # a stopped job keeps what it saved
    assert b"training stopped by the platform (SIGTERM)" in out


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (UserError("bad config"), 1, "ClientError: bad config"),
        (AlgorithmError("broke"), 2, "AlgorithmError: broke"),
        (RuntimeError("boom"), 2, "AlgorithmError: RuntimeError: boom\n"),
    ],
)
def test_a_processing_job_failure_becomes_the_exit_message_and_code(
    ml_base: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, code: int, message: str
) -> None:
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(ml_base))
    seen: list[list[str]] = []

    def job(argv: Sequence[str]) -> int:
        seen.append(list(argv))
        raise error

    assert run_container(ContainerEntry(process=job), ["--flag", "x"]) == code
    assert seen == [["--flag", "x"]]
    assert (ml_base / "output" / "message").read_text().startswith(message)


def test_a_processing_job_exit_code_passes_through_and_the_message_is_cut(
    ml_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(ml_base))
    assert run_container(ContainerEntry(process=lambda argv: 5), []) == 5
    assert not (ml_base / "output" / "message").exists()

    first = ExitMessage((ml_base / "a",), limit=4)
    first.write("123456")
    first.write("other")
    assert (ml_base / "a").read_text() == "1234"  # the first writer wins


EXITING_TRAINER = textwrap.dedent(
    """
    import atexit, logging, pathlib, sys
    from containers.toolkit.entrypoint import exit_process, main_for
    from containers.toolkit.threads import start_background

    def train(env):
        (env.paths.model_dir / "model.bin").write_text("ok")
        marker = env.paths.model_dir.parent / "teardown-ran"
        atexit.register(marker.write_text, "yes")  # the interpreter's teardown would run this
        start_background(lambda: None, "idle-reader")
        sys.stdout.write("unflushed line without a newline")
        logging.getLogger("containers.job").info("job done")

    exit_process(main_for(train, lambda: 0, ["train"]))
    """
)


def test_the_process_ends_with_the_jobs_code_and_flushed_output_without_the_interpreters_teardown(
    ml_base: Path,
) -> None:
    """exit_process (docs/containers.md#the-process-exit): what the job wrote is out, its code is the process's, and
    nothing of the interpreter's teardown runs (a native thread alive then can abort the process with -6)."""
    make_tree(ml_base, hyperparameters={}, channels={"train": {}})
    result = subprocess.run(
        [PYTHON, "-c", EXITING_TRAINER],
        cwd=REPO_ROOT,
        env=subprocess_env(SAGEMAKER_BASE_DIR=str(ml_base)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (ml_base / "output" / "success").exists() and (ml_base / "model" / "model.bin").read_text() == "ok"
    assert "unflushed line without a newline" in result.stdout
    assert "job done" in result.stdout + result.stderr
    assert not (ml_base / "teardown-ran").exists()
