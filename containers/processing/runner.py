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
from typing import IO

from containers.processing.spark_submit import (
    SparkCommand,
    SubmitError,
    base_dir,
    build_spark_command,
    is_primary_host,
    is_spark_submit,
)

logger = logging.getLogger(__name__)

__all__ = ["interpreter_argv", "run_command"]

BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
MESSAGE_LIMIT = 1024
EXIT_NO_COMMAND = 2
_PYTHON = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
_TAIL_LINES = 20


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
    command = interpreter_argv(argv)
    environment: dict[str, str] | None = None
    spark: SparkCommand | None = None
    if is_spark_submit(argv):
        if not is_primary_host(base_dir()):
            logger.info("smspark-submit: not the primary host; the application runs on the first host only")
            return 0
        try:
            spark = build_spark_command(argv)
        except SubmitError as exc:
            _write_message(str(exc))
            logger.error("%s", exc)
            return EXIT_NO_COMMAND
        command, environment = spark.argv, {**os.environ, **spark.environment}
    logger.info("running %s", " ".join(command))
    try:
        child = subprocess.Popen(command, stderr=subprocess.PIPE, env=environment)
    except OSError as exc:
        _write_message(f"ClientError: cannot run {command[0]}: {exc}")
        return 127
    previous = {sig: signal.signal(sig, _forward(child)) for sig in _FORWARDED}
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    pump = threading.Thread(target=_tee, args=(child.stderr, tail), daemon=True)
    pump.start()
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    pump.join(timeout=5)
    if spark is not None:
        spark.finish()
    code = 128 - code if code < 0 else code
    if code != 0:
        _write_message(_failure(code, list(tail)))
    return code


def _forward(child: subprocess.Popen[bytes]) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    return handler


def _tee(stream: IO[bytes] | None, tail: collections.deque[str]) -> None:
    if stream is None:
        return
    for raw in iter(stream.readline, b""):
        sys.stderr.buffer.write(raw)
        sys.stderr.buffer.flush()
        text = raw.decode("utf-8", errors="replace").rstrip()
        if text:
            tail.append(text)


def _failure(code: int, tail: list[str]) -> str:
    last = tail[-1] if tail else "no error output"
    return f"AlgorithmError: {last}, exit code: {code}"


def _write_message(text: str) -> None:
    path = message_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text[:MESSAGE_LIMIT], encoding="utf-8")
    except OSError:
        logger.exception("could not write %s", path)
