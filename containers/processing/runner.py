"""Run the user's command as a child: ``python``/``python3`` is this interpreter, signals are forwarded, the exit
code is the child's, and a failure leaves ``/opt/ml/output/message`` (processing's failure file) behind.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, TextIO

from containers.processing.spark_cluster import ClusterError, SparkCluster, cluster_layout, run_worker_host
from containers.processing.spark_submit import (
    SparkCommand,
    SubmitError,
    base_dir,
    build_spark_command,
    is_spark_submit,
    spark_bin_dir,
)
from containers.toolkit.errors import PlatformError, failure_line

logger = logging.getLogger(__name__)

__all__ = ["interpreter_argv", "run_command"]

BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
MESSAGE_LIMIT = 1024
EXIT_NO_COMMAND = 2
_PYTHON = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
_TAIL_LINES = 200


def interpreter_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with a leading ``python``/``python3``/``/usr/bin/python3.x`` replaced by this interpreter."""
    command = list(argv)
    if command and _PYTHON.match(command[0]):
        command[0] = sys.executable
    return command


def message_path() -> Path:
    return Path(os.environ.get(BASE_DIR_ENV) or "/opt/ml") / "output" / "message"


def run_command(argv: Sequence[str]) -> int:
    """Run ``argv``; return its exit code (128 + signal when it was killed by one)."""
    if not argv:
        _write_message("ClientError: the processing container needs a command (AppSpecification.ContainerEntrypoint)")
        return EXIT_NO_COMMAND
    if is_spark_submit(argv):
        return _run_spark(argv)
    code, tail = _run(interpreter_argv(argv), None, None)
    if code != 0 and tail is not None:
        _write_message(_failure(code, tail))
    return code


def _run_spark(argv: Sequence[str]) -> int:
    """``smspark-submit``: ``local[*]`` on one host; on several, a standalone cluster with the driver on the first."""
    cluster = None
    try:
        layout = cluster_layout(base_dir())
        if layout is not None and not layout.is_primary:
            return run_worker_host(layout, spark_bin_dir())
        spark = build_spark_command(argv, cluster=layout)
        if layout is not None:
            cluster = SparkCluster(layout, spark_bin_dir())
            cluster.start()
    except (SubmitError, ClusterError, PlatformError) as exc:
        if cluster is not None:
            cluster.stop()
        message = str(exc) if isinstance(exc, SubmitError) else f"AlgorithmError: {exc}"
        _write_message(message)
        logger.error("%s", message)
        return EXIT_NO_COMMAND
    try:
        code, tail = _run(spark.argv, spark.environment, spark)
    finally:
        if cluster is not None:
            cluster.stop()
    spark.finish()
    if code != 0 and tail is not None:
        _write_message(_failure(code, tail))
    return code


def _run(
    command: list[str], extra_env: dict[str, str] | None, spark: SparkCommand | None
) -> tuple[int, list[str] | None]:
    """Run the child with stderr (and for Spark also stdout: PySpark's driver prints there) teed into a tail."""
    logger.info("running %s", " ".join(command))
    environment = {**os.environ, **extra_env} if extra_env else None
    stdout = subprocess.PIPE if spark is not None else None
    try:
        child = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, env=environment)
    except OSError as exc:
        _write_message(f"ClientError: cannot run {command[0]}: {exc}")
        return 127, None  # the message names the command already
    previous = {sig: signal.signal(sig, _forward(child)) for sig in _FORWARDED}
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    pumps = [threading.Thread(target=_tee, args=(child.stderr, sys.stderr, tail), daemon=True)]
    if child.stdout is not None:
        pumps.append(threading.Thread(target=_tee, args=(child.stdout, sys.stdout, tail), daemon=True))
    for pump in pumps:
        pump.start()
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for pump in pumps:
        pump.join(timeout=5)
    return (128 - code if code < 0 else code), list(tail)


def _forward(child: subprocess.Popen[bytes]) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    return handler


def _tee(stream: IO[bytes] | None, sink: TextIO, tail: collections.deque[str]) -> None:
    if stream is None:
        return
    for raw in iter(stream.readline, b""):
        sink.buffer.write(raw)
        sink.buffer.flush()
        text = raw.decode("utf-8", errors="replace").rstrip()
        if text:
            tail.append(text)


def _failure(code: int, tail: list[str]) -> str:
    return f"AlgorithmError: {failure_line(tail)}, exit code: {code}"


def _write_message(text: str) -> None:
    path = message_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text[:MESSAGE_LIMIT], encoding="utf-8")
    except OSError:
        logger.exception("could not write %s", path)
