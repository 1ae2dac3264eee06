"""Contract tests: script mode (script_mode.py, docs/reference/container-contract.md#script-mode) with tiny user scripts
written to tmp."""

from __future__ import annotations

import io
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from containers.toolkit.entrypoint import run_training
from containers.toolkit.errors import UserError
from containers.toolkit.framework.script_mode import (
    EntryPointType,
    ExecuteUserScriptError,
    InstallRequirementsError,
    build_command,
    entry_point_type,
    is_script_mode,
    run_user_entry_point,
    safe_extract,
)
from containers.toolkit.framework.training_env import Hardware
from tests.unit.containers.toolkit.conftest import PYTHON, REPO_ROOT, make_tree, subprocess_env

HW = Hardware(num_cpus=2)

TRAIN_PY = textwrap.dedent(
    """
    import argparse, os, pathlib, sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--num_round", type=int, required=True)
    parser.add_argument("--eta", type=float, default=0.3)
    parser.add_argument("--objective", type=str)
    parser.add_argument("--flag", type=str)
    parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAIN"])
    args = parser.parse_args()

    rows = (pathlib.Path(args.train) / "data.csv").read_text().splitlines()
    summary = f"{args.num_round} {args.eta} {args.objective} {args.flag} rows={len(rows)}"
    (pathlib.Path(args.model_dir) / "model.txt").write_text(summary)
    first_path = os.environ["PYTHONPATH"].split(os.pathsep)[0]
    print(f"[0]\\ttrain-auc:0.5\\tvalidation-auc:0.75", flush=True)
    print("pythonpath", first_path, flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    """
)

FAILING_PY = textwrap.dedent(
    """
    import sys
    print("working", flush=True)
    print("Traceback (most recent call last):", file=sys.stderr)
    print("ValueError: bad row 7", file=sys.stderr)
    sys.exit(3)
    """
)


def _user_env(make_env, tmp_path: Path, source: Path | str | None, program: str = "train.py", **hps: str):
    hyperparameters = {"sagemaker_program": f'"{program}"', **hps}
    if source is not None:
        hyperparameters["sagemaker_submit_directory"] = f'"{source}"'
    env = make_env(hyperparameters=hyperparameters, channels={"train": {"ContentType": "text/csv"}})
    (env.paths.channel_dir("train") / "data.csv").write_text("1,2\n0,3\n1,4\n")
    return env


def _source_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    source = tmp_path / "src"
    for name, text in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    return source


def _tarball(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_is_script_mode(make_env) -> None:
    assert is_script_mode(make_env(hyperparameters={"sagemaker_program": '"train.py"'}))
    assert is_script_mode(make_env({"SAGEMAKER_PROGRAM": "train.py"}, hyperparameters={}))
    assert not is_script_mode(make_env(hyperparameters={"num_round": "10"}))


@pytest.mark.parametrize(
    ("name", "with_setup", "expected"),
    [
        ("train.py", False, EntryPointType.PYTHON_PROGRAM),
        ("train.py", True, EntryPointType.PYTHON_PACKAGE),
        ("run.sh", True, EntryPointType.COMMAND),
        ("run.sh", False, EntryPointType.COMMAND),
        ("trainer", False, EntryPointType.COMMAND),
    ],
)
def test_entry_point_type(tmp_path: Path, name: str, with_setup: bool, expected: EntryPointType) -> None:
    if with_setup:
        (tmp_path / "setup.py").write_text("")
    assert entry_point_type(tmp_path, name) is expected


def test_build_command() -> None:
    assert build_command(EntryPointType.PYTHON_PROGRAM, "train.py", ["--a", "1"]) == [
        sys.executable,
        "train.py",
        "--a",
        "1",
    ]
    assert build_command(EntryPointType.PYTHON_PACKAGE, "train.py", ["-k", "2"]) == [
        sys.executable,
        "-m",
        "train",
        "-k",
        "2",
    ]
    assert build_command(EntryPointType.COMMAND, "run.sh", ["--name", "a b"]) == [
        "/bin/sh",
        "-c",
        "./run.sh --name 'a b'",
    ]


def test_local_directory_bundle_runs_with_argv_and_sm_env(make_env, tmp_path: Path, capsys) -> None:
    source = _source_dir(tmp_path, {"train.py": TRAIN_PY})
    env = _user_env(make_env, tmp_path, source, num_round="10", eta="0.2", objective='"binary:logistic"', flag="true")
    run_user_entry_point(env, hardware=HW)
    assert (env.paths.model_dir / "model.txt").read_text() == "10 0.2 binary:logistic True rows=3"
    assert (env.paths.code_dir / "train.py").exists()
    captured = capsys.readouterr()
    assert "[0]\ttrain-auc:0.5\tvalidation-auc:0.75\n" in captured.out
    assert f"pythonpath {env.paths.code_dir}\n" in captured.out
    assert captured.err == "to stderr\n"


def test_failing_script_raises_execute_user_script_error(make_env, tmp_path: Path, capsys) -> None:
    source = _source_dir(tmp_path, {"train.py": FAILING_PY})
    env = _user_env(make_env, tmp_path, source, x="1")
    with pytest.raises(ExecuteUserScriptError) as info:
        run_user_entry_point(env, hardware=HW)
    error = info.value
    assert isinstance(error, UserError)
    assert error.exit_code == 3
    assert error.message == (
        "ExecuteUserScriptError:\nExitCode 3\n"
        'ErrorMessage "Traceback (most recent call last):\nValueError: bad row 7"\n'
        f'Command "{sys.executable} train.py -x 1"'
    )
    assert error.failure_text() == error.message
    assert capsys.readouterr().out == "working\n"


@pytest.mark.parametrize(
    "body", ["import sys; sys.exit(137)", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
)
def test_killed_script_reports_out_of_memory(make_env, tmp_path: Path, body: str) -> None:
    env = _user_env(make_env, tmp_path, _source_dir(tmp_path, {"train.py": body}))
    with pytest.raises(ExecuteUserScriptError) as info:
        run_user_entry_point(env, hardware=HW)
    assert info.value.exit_code in (137, -9)
    assert info.value.message.startswith(f'ExecuteUserScriptError:\nExitCode {info.value.exit_code}\nErrorMessage ""')
    assert '\nExtraInfo "OutOfMemory: Process killed by SIGKILL (signal 9)"\nCommand "' in info.value.message


def test_shell_entry_point_is_made_executable_and_gets_quoted_args(make_env, tmp_path: Path) -> None:
    script = '#!/bin/sh\necho "$#|$2|$4" > "$SM_MODEL_DIR/args"\necho "$SM_HP_EPOCHS" > "$SM_MODEL_DIR/epochs"\n'
    source = _source_dir(tmp_path, {"run.sh": script})
    env = _user_env(make_env, tmp_path, source, program="run.sh", epochs="5", name='"a b"')
    run_user_entry_point(env, hardware=HW)
    assert (env.paths.model_dir / "args").read_text() == "4|5|a b\n"
    assert (env.paths.model_dir / "epochs").read_text() == "5\n"
    assert (env.paths.code_dir / "run.sh").stat().st_mode & 0o111


def test_tarball_bundle_with_a_package_import(make_env, tmp_path: Path) -> None:
    main = "from lib.util import answer\nimport os\nopen(os.environ['SM_MODEL_DIR'] + '/answer', 'w').write(answer())\n"
    bundle = _tarball(
        tmp_path / "sourcedir.tar.gz",
        {"train.py": main, "lib/__init__.py": "", "lib/util.py": "def answer(): return '42'"},
    )
    env = _user_env(make_env, tmp_path, bundle)
    run_user_entry_point(env, hardware=HW)
    assert (env.paths.model_dir / "answer").read_text() == "42"


def test_opt_ml_submit_directory_is_read_under_the_base_dir(make_env, tmp_path: Path, ml_base: Path) -> None:
    ml_base.mkdir(parents=True)
    _tarball(ml_base / "bundle.tar.gz", {"train.py": "import os; open(os.environ['SM_MODEL_DIR'] + '/ran', 'w')"})
    env = _user_env(make_env, tmp_path, "/opt/ml/bundle.tar.gz")
    run_user_entry_point(env, hardware=HW)
    assert (env.paths.model_dir / "ran").exists()


def test_non_empty_code_dir_is_not_overwritten(make_env, tmp_path: Path) -> None:
    bundle = _tarball(tmp_path / "sourcedir.tar.gz", {"train.py": "raise SystemExit(9)"})
    env = _user_env(make_env, tmp_path, bundle)
    env.paths.code_dir.mkdir(parents=True)
    (env.paths.code_dir / "train.py").write_text("import os; open(os.environ['SM_MODEL_DIR'] + '/m', 'w').write('x')")
    run_user_entry_point(env, hardware=HW)
    assert (env.paths.model_dir / "m").read_text() == "x"


def test_requirements_are_installed_and_failures_reported(make_env, tmp_path: Path) -> None:
    source = _source_dir(tmp_path, {"train.py": "print('ok')", "requirements.txt": "./no-such-project\n"})
    env = _user_env(make_env, tmp_path, source)
    with pytest.raises(InstallRequirementsError) as info:
        run_user_entry_point(env, hardware=HW)
    assert info.value.message.startswith(
        "InstallRequirementsError: could not install ./no-such-project from requirements.txt\n"
        "InstallRequirementsError:\nExitCode "
    )
    assert "-m pip install" in info.value.command
    assert f"--target {env.paths.base / 'user-packages'}" in info.value.command


def test_requirements_the_environment_satisfies_need_no_pip(make_env, tmp_path: Path) -> None:
    script = "import os, sys; open(os.environ['SM_MODEL_DIR'] + '/path', 'w').write(os.environ['PYTHONPATH'])"
    source = _source_dir(tmp_path, {"train.py": script, "requirements.txt": "numpy>=1\n# a comment\npytest\n"})
    env = _user_env(make_env, tmp_path, source)
    run_user_entry_point(env, hardware=HW)
    assert not (env.paths.base / "user-packages").exists()  # nothing was installed, nothing went to the venv
    assert (env.paths.model_dir / "path").read_text().startswith(f"{env.paths.code_dir}:{env.paths.base}/user-packages")


def test_a_requirement_the_registries_do_not_have_is_named(make_env, tmp_path: Path) -> None:
    source = _source_dir(tmp_path, {"train.py": "", "requirements.txt": "sagestack-no-such-package-4d1f==1.0\n"})
    env = _user_env(make_env, tmp_path, source)
    with pytest.raises(InstallRequirementsError) as info:
        run_user_entry_point(env, hardware=HW)
    first_line = info.value.failure_text().splitlines()[0]
    assert first_line.startswith("InstallRequirementsError: could not install sagestack-no-such-package-4d1f")


def test_missing_program_and_missing_entry_point(make_env, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs the sagemaker_program hyperparameter"):
        run_user_entry_point(make_env(hyperparameters={"a": "1"}), hardware=HW)
    env = _user_env(make_env, tmp_path, _source_dir(tmp_path, {"other.py": ""}))
    with pytest.raises(UserError, match=r"Entry point train.py not found in .*code \(it holds: other.py\)"):
        run_user_entry_point(env, hardware=HW)
    shutil.rmtree(env.paths.code_dir)
    env = _user_env(make_env, tmp_path, tmp_path / "missing")
    with pytest.raises(UserError, match=r"sagemaker_submit_directory .*missing does not exist"):
        run_user_entry_point(env, hardware=HW)


def _unsafe_tar(path: Path, member: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("fine.py")
        tar.addfile(ok, io.BytesIO(b""))
        tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_member("../evil.py"), "'..' in path"),
        (_member("a/../../evil.py"), "'..' in path"),
        (_member("/tmp/evil.py"), "absolute path"),
        (_member("passwd", tarfile.SYMTYPE, "/etc/passwd"), "absolute symlink"),
        (_member("up", tarfile.SYMTYPE, "../../outside"), "symlink escapes the code directory"),
        (_member("hard", tarfile.LNKTYPE, "../outside"), "hard link escapes the code directory"),
        (_member("dev", tarfile.CHRTYPE), "device or fifo"),
    ],
)
def test_unsafe_archives_are_rejected(tmp_path: Path, member: tarfile.TarInfo, reason: str) -> None:
    archive = _unsafe_tar(tmp_path / "bad.tar.gz", member)
    destination = tmp_path / "code"
    destination.mkdir()
    with pytest.raises(UserError, match=f"Unsafe entry .* in code bundle bad.tar.gz: {reason}"):
        safe_extract(archive, destination)
    assert list(destination.iterdir()) == []
    assert not (tmp_path / "evil.py").exists()


def test_inside_symlinks_are_allowed(tmp_path: Path) -> None:
    archive = _unsafe_tar(tmp_path / "ok.tar.gz", _member("alias.py", tarfile.SYMTYPE, "fine.py"))
    safe_extract(archive, tmp_path / "code")
    assert (tmp_path / "code" / "alias.py").is_symlink()


def test_not_a_tarball_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "x.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(UserError, match=r"Could not extract code bundle x\.tar\.gz"):
        safe_extract(tmp_path / "x.tar.gz", tmp_path)


def test_s3_bundle_is_downloaded_from_aws_endpoint_url(make_env, tmp_path: Path) -> None:
    boto3 = pytest.importorskip("boto3")
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="t"
        )
        s3.create_bucket(Bucket="bucket")
        main = "import os; open(os.environ['SM_MODEL_DIR'] + '/from-s3', 'w').write(os.environ['SM_MODULE_DIR'])"
        bundle = _tarball(tmp_path / "sourcedir.tar.gz", {"train.py": main})
        s3.upload_file(str(bundle), "bucket", "job/source/sourcedir.tar.gz")
        uri = "s3://bucket/job/source/sourcedir.tar.gz"
        env = make_env(
            {"AWS_ENDPOINT_URL": endpoint, **creds},
            hyperparameters={"sagemaker_program": '"train.py"', "sagemaker_submit_directory": f'"{uri}"'},
        )
        run_user_entry_point(env, hardware=HW)
        assert (env.paths.model_dir / "from-s3").read_text() == uri
        missing = make_env(
            {"AWS_ENDPOINT_URL": endpoint, **creds},
            hyperparameters={"sagemaker_program": '"x.py"', "sagemaker_submit_directory": '"s3://bucket/nope.tar.gz"'},
        )
        shutil.rmtree(missing.paths.code_dir)
        with pytest.raises(UserError, match=r"Could not download the code bundle s3://bucket/nope\.tar\.gz"):
            run_user_entry_point(missing, hardware=HW)
    finally:
        server.stop()


@pytest.mark.usefixtures("restore_process_state")
def test_failure_file_of_a_failing_script_under_run_training(
    ml_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _source_dir(tmp_path, {"train.py": FAILING_PY})
    make_tree(ml_base, hyperparameters={"sagemaker_program": '"train.py"', "sagemaker_submit_directory": f'"{source}"'})
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(ml_base))
    assert run_training(run_user_entry_point) == 1
    failure = (ml_base / "output" / "failure").read_text()
    assert failure.startswith('ExecuteUserScriptError:\nExitCode 3\nErrorMessage "Traceback (most recent call last):')


TERM_AWARE_PY = textwrap.dedent(
    """
    import os, pathlib, signal, sys, time
    model = pathlib.Path(os.environ["SM_MODEL_DIR"])

    def on_term(signum, frame):
        (model / "saved-on-sigterm").write_text("yes")
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    (model / "started").write_text("yes")
    time.sleep(60)
    """
)

PARENT = (
    "import sys; from containers.toolkit.entrypoint import run_training; "
    "from containers.toolkit.framework.script_mode import run_user_entry_point; "
    "sys.exit(run_training(run_user_entry_point))"
)


def test_sigterm_is_forwarded_to_the_user_script(ml_base: Path, tmp_path: Path) -> None:
    source = _source_dir(tmp_path, {"train.py": TERM_AWARE_PY})
    make_tree(ml_base, hyperparameters={"sagemaker_program": '"train.py"', "sagemaker_submit_directory": f'"{source}"'})
    process = subprocess.Popen(
        [PYTHON, "-c", PARENT],
        cwd=REPO_ROOT,
        env=subprocess_env(SAGEMAKER_BASE_DIR=str(ml_base)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    started = ml_base / "model" / "started"
    deadline = time.monotonic() + 60
    while not started.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"user script never started: {process.communicate()!r}")
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 143
    assert (ml_base / "model" / "saved-on-sigterm").read_text() == "yes"
    assert "Training stopped by SIGTERM" in (ml_base / "output" / "failure").read_text()
