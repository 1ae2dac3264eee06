"""Runs one EMR step's Spark work: ``command-runner.jar`` + ``spark-submit ...`` on the cluster's standalone master.

As on EMR, the step's ``Args`` are the command line. ``spark-submit`` becomes pyspark's ``bin/spark-submit`` with
``--master spark://127.0.0.1:<port>`` and client deploy mode (a Python driver cannot run in cluster mode on a
standalone master); ``s3://`` application files (the app, ``--py-files``, ``--files``, ``--jars``) are copied from the
stack's S3 first, as EMR does with ``s3://`` paths. The driver and its executors get the stack as
``AWS_ENDPOINT_URL``. The driver's output is the step's ``stdout``/``stderr`` log
(docs/spark.md#8-emr-clusters-locally).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location, safe_join
from infra.runtime.process.host_process import with_parent_death_signal

logger = logging.getLogger(__name__)

COMMAND_RUNNER = "command-runner.jar"
_DROPPED_OPTIONS = frozenset({"--master", "--deploy-mode"})
_FILE_OPTIONS = frozenset({"--py-files", "--files", "--jars", "--archives"})
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")
_DRIVER_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


class StepCommandError(ValueError):
    """The step's command cannot run here; the message says why."""


@dataclass(frozen=True)
class StepEnvironment:
    """What every step's driver gets: the stack's URL and region, and where the step's files go."""

    stack_url: str
    region: str
    s3: S3Access


@dataclass
class RunningStep:
    """One step's spark-submit; :meth:`kill` ends it (TerminateJobFlows, CancelSteps)."""

    step_dir: Path
    process: subprocess.Popen[bytes] | None = None
    killed: threading.Event = field(default_factory=threading.Event)

    def kill(self) -> None:
        self.killed.set()
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # the JVM and the Python driver it started


def spark_submit_command(args: Sequence[str], master_url: str, fetch: Callable[[str], str]) -> list[str]:
    """The local command for a step's ``Args`` (``spark-submit [options] <app> [app args]``)."""
    from infra.control_plane.emr.standalone_cluster import spark_home

    if not args or PurePosixPath(args[0]).name != "spark-submit":
        shown = " ".join(args[:3]) if args else "(no Args)"
        raise StepCommandError(
            f"command-runner.jar runs spark-submit steps locally; this step runs {shown!r}. Put the work in a "
            "spark-submit application."
        )
    command = [str(spark_home() / "bin" / "spark-submit"), "--master", master_url, "--deploy-mode", "client"]
    for key, value in _DRIVER_CONF.items():
        command += ["--conf", f"{key}={value}"]
    rest, index = list(args[1:]), 0
    while index < len(rest) and rest[index].startswith("--"):
        option = rest[index]
        value = rest[index + 1] if index + 1 < len(rest) else ""
        if option in _FILE_OPTIONS:
            command += [option, ",".join(fetch(part) for part in value.split(",") if part)]
        elif option not in _DROPPED_OPTIONS:
            command += [option, value]
        index += 2
    if index >= len(rest):
        raise StepCommandError("spark-submit needs an application (a .py file or a JAR) after its options.")
    return [*command, fetch(rest[index]), *rest[index + 1 :]]


def run_spark_step(
    running: RunningStep, config: dict[str, object], master_url: str, env: StepEnvironment
) -> dict[str, str] | None:
    """Run the step to its end; ``None`` on success, else ``FailureDetails`` (Reason, Message, LogFile)."""
    jar = str(config.get("Jar") or "")
    args = [str(a) for a in config.get("Args") or []]  # type: ignore[attr-defined]
    running.step_dir.mkdir(parents=True, exist_ok=True)
    try:
        if PurePosixPath(jar).name != COMMAND_RUNNER:
            raise StepCommandError(
                f"custom JAR steps ({jar}) are not run locally; use {COMMAND_RUNNER} with spark-submit."
            )
        command = spark_submit_command(args, master_url, lambda uri: _local_copy(uri, running.step_dir, env.s3))
    except (StepCommandError, S3AccessError) as exc:
        _write_logs(running.step_dir, b"", str(exc).encode())
        return {"Reason": "The step's command cannot run", "Message": str(exc), "LogFile": "stderr"}
    return _submit(running, command, env)


def _submit(running: RunningStep, command: list[str], env: StepEnvironment) -> dict[str, str] | None:
    step_env = _driver_environment(env)
    for key in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        command[1:1] = ["--conf", f"spark.executorEnv.{key}={step_env[key]}"]
    stdout_path, stderr_path = running.step_dir / "stdout", running.step_dir / "stderr"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        running.process = subprocess.Popen(
            with_parent_death_signal(command),
            cwd=running.step_dir,
            env=step_env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        if running.killed.is_set():
            running.kill()
        code = running.process.wait()
    if code == 0:
        return None
    if running.killed.is_set():
        return {"Reason": "The step was cancelled", "Message": "the cluster was terminated", "LogFile": "stderr"}
    # A Python driver's own output (its traceback included) is spark-submit's stdout; the JVM logs to stderr.
    logs = [p.read_text(encoding="utf-8", errors="replace") for p in (stdout_path, stderr_path)]
    error = driver_error(logs[0]) or driver_error(logs[1])
    log = "stdout" if driver_error(logs[0]) else "stderr"
    return {"Reason": error or f"spark-submit exited with code {code}", "Message": f"exit code {code}", "LogFile": log}


def driver_error(stderr: str) -> str | None:
    """The driver's error: the last exception line of its output (a Python traceback's last line)."""
    for line in reversed(stderr.splitlines()):
        if _ERROR_LINE.match(line.strip()):
            return line.strip()[:1000]
    return None


def _driver_environment(env: StepEnvironment) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": env.stack_url,
        "AWS_REGION": env.region,
        "AWS_DEFAULT_REGION": env.region,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


def _local_copy(uri: str, step_dir: Path, s3: S3Access) -> str:
    """``s3://`` files are copied into the step's folder (as EMR's command runner does); local paths stay."""
    if not uri.startswith("s3://"):
        return uri
    location = S3Location.parse(uri)
    target = safe_join(step_dir / "files", PurePosixPath(location.key).name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(s3.get_bytes(location))
    return str(target)


def _write_logs(step_dir: Path, stdout: bytes, stderr: bytes) -> None:
    (step_dir / "stdout").write_bytes(stdout)
    (step_dir / "stderr").write_bytes(stderr)


def upload_step_logs(step_dir: Path, log_uri: str, s3: S3Access) -> None:
    """``<LogUri>/<cluster id>/steps/<step id>/{stdout,stderr}.gz``, EMR's layout; a failed upload is logged."""
    for name in ("stdout", "stderr"):
        path = step_dir / name
        if not path.exists():
            continue
        try:
            s3.put_bytes(S3Location.parse(f"{log_uri.rstrip('/')}/{name}.gz"), gzip.compress(path.read_bytes()))
        except (S3AccessError, ValueError) as exc:
            logger.warning("step log %s not uploaded to %s: %s", name, log_uri, exc)
