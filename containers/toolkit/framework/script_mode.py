"""Script mode (docs/reference/container-contract.md#script-mode): run a user's entry point the way the SageMaker
training toolkit does.

The code bundle named by ``sagemaker_submit_directory`` (a local directory, a local tarball, or
``s3://.../sourcedir.tar.gz``) is unpacked into ``/opt/ml/code`` when that directory is empty. The entry point
(``sagemaker_program`` or env ``SAGEMAKER_PROGRAM``) runs as ``python <script> <args>``, ``python -m <module> <args>``
(when the bundle has a ``setup.py``) or a command, with the ``SM_*`` environment of :mod:`training_env` and
``PYTHONPATH`` set to the code directory. Its output is streamed line by line; a non-zero exit raises
:class:`ExecuteUserScriptError`, whose text is what the toolkit writes to ``/opt/ml/output/failure``.
"""

from __future__ import annotations

import enum
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from containers.toolkit.environment import DEFAULT_BASE_DIR, TrainingEnvironment
from containers.toolkit.errors import PlatformError, UserError
from containers.toolkit.framework.training_env import (
    SUBMIT_DIR_PARAM,
    Hardware,
    decode_hyperparameters,
    decode_value,
    sm_env_vars,
    split_hyperparameters,
    to_cmd_args,
    user_entry_point,
)
from containers.toolkit.framework.user_packages import (
    install_requirements,
    pip_install_command,
    unsatisfied_package,
    with_python_path,
)

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 20
OOM_INFO = "OutOfMemory: Process killed by SIGKILL (signal 9)"
PIPE_DRAIN_SECONDS = 10.0
MESSAGE_TAIL_CHARS = 640  # of stderr in a failure message (FailureReason keeps 1024 characters)
USER_PACKAGES_DIR = "user-packages"  # under the base directory: where requirements.txt is installed


class EntryPointType(enum.Enum):
    PYTHON_PROGRAM = "python program"
    PYTHON_PACKAGE = "python package"
    COMMAND = "command"


class ProcessError(UserError):
    """A user process exited non-zero; the text follows the training toolkit's ``_CalledProcessError``."""

    kind = "ProcessError"

    def __init__(self, exit_code: int, command: str, stderr: str, extra_info: str | None = None) -> None:
        self.exit_code = exit_code
        self.command = command
        self.stderr = stderr
        self.extra_info = extra_info
        extra = "" if extra_info is None else f'\nExtraInfo "{extra_info}"'
        text = f'{self.kind}:\nExitCode {exit_code}\nErrorMessage "{_message_tail(stderr)}"{extra}\nCommand "{command}"'
        super().__init__(text.strip())

    def failure_text(self) -> str:
        return self.message


class ExecuteUserScriptError(ProcessError):
    kind = "ExecuteUserScriptError"


class InstallRequirementsError(ProcessError):
    """pip failed on ``requirements.txt``; the first line names the requirement pip could not install."""

    kind = "InstallRequirementsError"

    def __init__(self, exit_code: int, command: str, stderr: str, extra_info: str | None = None) -> None:
        super().__init__(exit_code, command, stderr, extra_info)
        package = unsatisfied_package(stderr)
        if package is not None:
            self.message = f"{self.kind}: could not install {package} from requirements.txt\n{self.message}"


def _message_tail(stderr: str) -> str:
    """The end of the user process's stderr, at most ``MESSAGE_TAIL_CHARS`` and whole lines where possible: the
    job's FailureReason keeps 1024 characters, and the traceback's last line (the exception) must be among them."""
    if len(stderr) <= MESSAGE_TAIL_CHARS:
        return stderr
    tail = stderr[-MESSAGE_TAIL_CHARS:]
    newline = tail.find("\n")
    return tail[newline + 1 :] if 0 <= newline < len(tail) - 1 else tail


class InstallModuleError(ProcessError):
    kind = "InstallModuleError"


def is_script_mode(env: TrainingEnvironment) -> bool:
    """True when a user entry point is set (``sagemaker_program`` or env ``SAGEMAKER_PROGRAM``)."""
    return user_entry_point(env) is not None


def entry_point_type(code_dir: Path, name: str) -> EntryPointType:
    """Decided by the name, as in the toolkit: ``.sh`` command, ``setup.py`` package, ``.py`` program, else command."""
    if name.endswith(".sh"):
        return EntryPointType.COMMAND
    if (code_dir / "setup.py").exists():
        return EntryPointType.PYTHON_PACKAGE
    if name.endswith(".py"):
        return EntryPointType.PYTHON_PROGRAM
    return EntryPointType.COMMAND


def build_command(kind: EntryPointType, name: str, args: Sequence[str]) -> list[str]:
    if kind is EntryPointType.PYTHON_PROGRAM:
        return [sys.executable, name, *args]
    if kind is EntryPointType.PYTHON_PACKAGE:
        return [sys.executable, "-m", name.removesuffix(".py"), *args]
    # Arguments are shell-quoted (the toolkit joins them unquoted; quoting keeps values with spaces intact).
    return ["/bin/sh", "-c", " ".join([f"./{shlex.quote(name)}", *(shlex.quote(a) for a in args)])]


def run_user_entry_point(
    env: TrainingEnvironment,
    *,
    hardware: Hardware | None = None,
    launcher: Callable[[list[str]], list[str]] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> None:
    """Unpack the code bundle, install what it needs, and run the entry point; raises on a non-zero exit.

    ``launcher`` rewrites the command (PyTorch's ``torchrun``); ``extra_env`` is added to the user's environment.
    """
    entry = user_entry_point(env)
    if entry is None:
        raise UserError("Script mode needs the sagemaker_program hyperparameter or the SAGEMAKER_PROGRAM variable.")
    code_dir = prepare_code_dir(env)
    kind = entry_point_type(code_dir, entry)
    if kind is not EntryPointType.PYTHON_PACKAGE and not (code_dir / entry).is_file():
        found = ", ".join(sorted(p.name for p in code_dir.iterdir())) or "nothing"
        raise UserError(f"Entry point {entry} not found in {code_dir} (it holds: {found}).")
    child_env = {**child_environment(env, code_dir, hardware), **(extra_env or {})}
    _install(kind, code_dir, entry, child_env, env.paths.base / USER_PACKAGES_DIR)
    user_hps, _ = split_hyperparameters(decode_hyperparameters(env.hyperparameters))
    command = build_command(kind, entry, to_cmd_args(user_hps))
    if launcher is not None:
        command = launcher(command)
    logger.info("invoking user script: %s", " ".join(command))
    run_process(command, cwd=code_dir, env=child_env, error=ExecuteUserScriptError)


def child_environment(env: TrainingEnvironment, code_dir: Path, hardware: Hardware | None = None) -> dict[str, str]:
    """The process environment plus the ``SM_*`` variables, with the code directory first on ``PYTHONPATH``."""
    child = dict(env.environ)
    child.update(sm_env_vars(env, hardware))
    return with_python_path(child, code_dir, env.paths.base / USER_PACKAGES_DIR)


def _install(kind: EntryPointType, code_dir: Path, entry: str, child_env: Mapping[str, str], target: Path) -> None:
    """``requirements.txt`` and a ``setup.py`` package go to ``target`` (per job), never into the image's Python."""
    if kind is not EntryPointType.COMMAND:
        install_requirements(code_dir, target, _runner(InstallRequirementsError), child_env)
    if kind is EntryPointType.PYTHON_PACKAGE:
        logger.info("installing the user package in %s", code_dir)
        run_process(pip_install_command(target, package="."), cwd=code_dir, env=child_env, error=InstallModuleError)
    if kind is EntryPointType.COMMAND:
        (code_dir / entry).chmod(0o777)


def _runner(error: type[ProcessError]) -> Callable[[list[str], Path, Mapping[str, str]], None]:
    def run(command: list[str], cwd: Path, env: Mapping[str, str]) -> None:
        run_process(command, cwd=cwd, env=env, error=error)

    return run


# -- the code bundle -------------------------------------------------------------------------------------------------


def prepare_code_dir(env: TrainingEnvironment) -> Path:
    """Fill ``/opt/ml/code`` from ``sagemaker_submit_directory`` unless it already holds files."""
    raw = env.hyperparameters.get(SUBMIT_DIR_PARAM)
    source = str(decode_value(raw)) if raw else ""
    return fill_code_dir(source, env.paths.code_dir, env.environ, env.paths.base)


def fill_code_dir(source: str, code_dir: Path, environ: Mapping[str, str], base: Path) -> Path:
    """Fill ``code_dir`` from a code bundle (a directory, a tarball or ``s3://...``) unless it already holds files.

    The serving containers use it too, for ``SAGEMAKER_SUBMIT_DIRECTORY``; ``base`` is the container's ``/opt/ml``.
    """
    code_dir.mkdir(parents=True, exist_ok=True)
    if not source or any(code_dir.iterdir()):
        return code_dir
    if source.startswith("s3://"):
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "sourcedir.tar.gz"
            download_s3(source, archive, environ)
            safe_extract(archive, code_dir)
        return code_dir
    local = _container_path(Path(source.removeprefix("file://")), base)
    if local.is_dir():
        if local.resolve() != code_dir.resolve():
            shutil.copytree(local, code_dir, dirs_exist_ok=True)
    elif local.is_file() and tarfile.is_tarfile(local):
        safe_extract(local, code_dir)
    elif local.is_file():
        shutil.copy2(local, code_dir / local.name)
    else:
        raise UserError(f"{SUBMIT_DIR_PARAM} {source} does not exist.")
    return code_dir


def _container_path(path: Path, base: Path) -> Path:
    """``/opt/ml/...`` names the base directory, which differs from /opt/ml when no mount namespace is used."""
    if path.exists():
        return path
    try:
        return base / path.relative_to(DEFAULT_BASE_DIR)
    except ValueError:
        return path


def download_s3(uri: str, destination: Path, environ: Mapping[str, str]) -> None:
    """Download one object, honouring ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` / ``S3_ENDPOINT_URL``."""
    import boto3  # only s3:// code bundles need it
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise UserError(f"{SUBMIT_DIR_PARAM} {uri} is not an s3://bucket/key URI.")
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or environ.get("S3_ENDPOINT_URL")
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    logger.info("downloading code bundle %s", uri)
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region,
            aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=environ.get("AWS_SESSION_TOKEN") or None,
        )
        client.download_file(bucket, key, str(destination))
    except ClientError as exc:
        raise UserError(f"Could not download the code bundle {uri}: {exc}") from exc
    except BotoCoreError as exc:
        raise PlatformError(f"Could not reach S3 to download the code bundle {uri}: {exc}") from exc


def _inside(root: Path, candidate: Path) -> bool:
    return candidate == root or root in candidate.parents


def _check_member(member: tarfile.TarInfo, root: Path) -> str | None:
    """Why ``member`` may not be extracted under ``root`` (resolved), or None when it is safe."""
    name = member.name
    if name.startswith(("/", "\\")) or os.path.isabs(name):
        return "absolute path"
    if ".." in Path(name).parts:
        return "'..' in path"
    target = (root / name).resolve()
    if not _inside(root, target):
        return "path escapes the code directory"
    if member.issym():
        if os.path.isabs(member.linkname):
            return "absolute symlink"
        if not _inside(root, (target.parent / member.linkname).resolve()):
            return "symlink escapes the code directory"
    if member.islnk() and not _inside(root, (root / member.linkname).resolve()):
        return "hard link escapes the code directory"
    if member.isdev():
        return "device or fifo"
    return None


def safe_extract(archive: Path, destination: Path) -> None:
    """Extract a (gzip) tarball, refusing absolute names, ``..``, links leaving ``destination`` and devices."""
    root = destination.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                reason = _check_member(member, root)
                if reason is not None:
                    raise UserError(f"Unsafe entry {member.name!r} in code bundle {archive.name}: {reason}.")
            tar.extractall(root, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise UserError(f"Could not extract code bundle {archive.name}: {exc}") from exc


# -- running a child process ------------------------------------------------------------------------------------------


def _pump(pipe: IO[bytes], sink: IO[str], tail: deque[str] | None) -> None:
    for raw in iter(pipe.readline, b""):
        text = raw.decode("utf-8", errors="replace")
        sink.write(text)
        sink.flush()
        if tail is not None:
            tail.append(text.rstrip("\r\n"))
    pipe.close()


class _SigtermForwarder:
    """While the child runs, SIGTERM goes to it; afterwards the previous handler gets the signal too."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._previous: Any = None
        self._installed = False
        self.received = False

    def __enter__(self) -> _SigtermForwarder:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._forward)
            self._installed = True
        return self

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        logger.warning("forwarding SIGTERM to the user process %d", self._process.pid)
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def __exit__(self, *exc_info: object) -> None:
        if not self._installed:
            return
        signal.signal(signal.SIGTERM, self._previous)
        if self.received:
            signal.raise_signal(signal.SIGTERM)  # let the entry point (or the default action) see the stop


def run_process(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], error: type[ProcessError] = ExecuteUserScriptError
) -> None:
    """Run ``command``, streaming stdout/stderr line by line to ours; raise ``error`` on a non-zero exit."""
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    try:
        process = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise error(exc.errno or 1, " ".join(command), str(exc)) from exc
    assert process.stdout is not None and process.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, sys.stdout, None), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, sys.stderr, tail), daemon=True),
    ]
    with _SigtermForwarder(process):
        for pump in pumps:
            pump.start()
        return_code = process.wait()
        for pump in pumps:
            pump.join(PIPE_DRAIN_SECONDS)  # a background grandchild may hold the pipes open; don't wait on it
    if return_code != 0:
        extra = OOM_INFO if return_code in (137, -signal.SIGKILL) else None
        raise error(return_code, " ".join(command), "\n".join(tail), extra)
