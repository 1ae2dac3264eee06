"""The container entry: the one place that catches everything, for training, processing and serving.

Every container's ``__main__`` hands :func:`run_container` a :class:`ContainerEntry` (its ``train``/``serve``
functions, or its ``process`` job) and exits with what it returns. The entry sets up logging and turns the job's end
into SageMaker's signals:

- training (``run_training``): ``/opt/ml/output/success`` and exit 0, or ``/opt/ml/output/failure`` (a readable
  reason) and a non-zero exit. On failure the model directory is emptied, so a half-written model is never mistaken
  for a result. SIGTERM (StopTrainingJob, MaxRuntimeInSeconds) raises ``TrainingTerminated`` in the main thread so
  algorithms can save what they have.
- processing (``run_processing``): the job's own exit code, or the reason in the entry's failure files
  (:class:`ExitMessage`) and exit 1 (``ClientError``) or 2 (``AlgorithmError``).
- serving: logging, then the model server.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from types import FrameType
from typing import NoReturn, TextIO

from containers.toolkit.environment import Paths, TrainingEnvironment
from containers.toolkit.errors import AlgorithmError, ToolkitError
from containers.toolkit.threads import limit_native_threads, stop_background

logger = logging.getLogger(__name__)

__all__ = [
    "EXIT_ALGORITHM_ERROR",
    "EXIT_TERMINATED",
    "EXIT_USER_ERROR",
    "ContainerEntry",
    "ExitMessage",
    "TrainingTerminated",
    "configure_logging",
    "configure_processing_logging",
    "dense_algorithm_main",
    "exit_process",
    "main_for",
    "run_container",
    "run_processing",
    "run_training",
]

EXIT_USER_ERROR = 1
EXIT_ALGORITHM_ERROR = 2
EXIT_TERMINATED = 143
MESSAGE_LIMIT = 1024  # characters of an exit message
LOG_FORMAT = "[%(asctime)s %(levelname)s %(name)s] %(message)s"
LOG_DATE_FORMAT = "%m/%d/%Y %H:%M:%S"
BLAS_IDLE_SPIN = ("OPENBLAS_THREAD_TIMEOUT", "4")  # idle workers spin 2^4 cycles, not 2^28, before they sleep


class TrainingTerminated(BaseException):
    """Raised in the main thread when the platform sends SIGTERM."""


def configure_logging(
    level: int = logging.INFO, stream: TextIO | None = None, date_format: str | None = LOG_DATE_FORMAT
) -> None:
    """Container log format: ``[MM/DD/YYYY HH:MM:SS INFO name] message`` on stdout, like the built-ins."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, date_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def configure_processing_logging() -> None:
    """The processing image's log set-up: the same format on stderr with ISO times (its stdout is the user's)."""
    configure_logging(stream=sys.stderr, date_format=None)


@dataclass(frozen=True)
class ExitMessage:
    """Where a processing job leaves its exit message: a failure's reason (written by the catch-all) or, for jobs
    that report one, the outcome (processing's ``/opt/ml/output/message`` becomes ``ExitMessage``)."""

    files: tuple[Path, ...]
    limit: int | None = None  # characters kept
    first_writer_wins: bool = True  # an existing file is left as it is

    @classmethod
    def processing(cls) -> ExitMessage:
        """Processing's exit message file, ``<base>/output/message``, overwritten, at most 1024 characters."""
        return cls((Paths.from_env().output_dir / "message",), limit=MESSAGE_LIMIT, first_writer_wins=False)

    def write(self, message: str) -> None:
        text = message if self.limit is None else message[: self.limit]
        for path in self.files:
            if self.first_writer_wins and path.exists():
                continue
            _write(path, text)


@dataclass(frozen=True)
class ContainerEntry:
    """What a container runs: ``train``/``serve`` (an algorithm image, ``train`` by default), or ``process`` (a
    processing image, given every argument) with the ``failure`` report its catch-all writes. An image with both
    (the framework images) runs ``process`` for any command but ``train`` and ``serve``."""

    train: Callable[[TrainingEnvironment], None] | None = None
    serve: Callable[[], int] | None = None
    process: Callable[[Sequence[str]], int] | None = None
    failure: Callable[[], ExitMessage] = ExitMessage.processing  # built when the job runs (it reads the environment)
    configure_logs: Callable[[], None] = configure_logging


def run_container(entry: ContainerEntry, argv: Sequence[str] | None = None) -> int:
    """``python -m containers.<name> [args]``: the image's ENTRYPOINT; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    algorithm = entry.train is not None or entry.serve is not None
    if entry.process is not None and (not algorithm or not args or args[0] not in ("train", "serve")):
        entry.configure_logs()
        return run_processing(entry.process, args, entry.failure())
    command = args[0] if args else "train"
    if command == "train" and entry.train is not None:
        return run_training(entry.train)
    if command == "serve" and entry.serve is not None:
        entry.configure_logs()
        return entry.serve()
    sys.stderr.write(f"unknown command {command!r}: expected 'train' or 'serve'\n")
    return 2


def exit_process(code: int) -> NoReturn:
    """End the container's process with ``code`` once the job's threads are stopped and its logs flushed, skipping
    the interpreter's teardown.

    Arrow's readers and other native thread pools can still hold a C++ thread when the interpreter tears down, and its
    destructor then aborts the process ("terminate called without an active exception", exit -6) after the job's
    work, success file and logs are done: the job would be reported failed. The built-in images' ``__main__`` end
    with this instead of ``sys.exit`` (docs/containers.md#the-process-exit).
    """
    stop_background()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: nothing more can be written to it
            pass
    os._exit(code)


def main_for(
    train: Callable[[TrainingEnvironment], None], serve: Callable[[], int], argv: list[str] | None = None
) -> int:
    """``python -m containers.<algo> train|serve``: an algorithm image's ENTRYPOINT."""
    return run_container(ContainerEntry(train=train, serve=serve), argv)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise TrainingTerminated(f"received signal {signum}")


def _catch_all(job: Callable[[], int], fail: Callable[[str], None]) -> int:
    """Run ``job``; any exception becomes a failure reason (``fail``) and an exit code."""
    try:
        return job()
    except ToolkitError as exc:
        logger.error("%s", exc.failure_text())
        fail(exc.failure_text())
        return EXIT_ALGORITHM_ERROR if isinstance(exc, AlgorithmError) else EXIT_USER_ERROR
    except Exception as exc:  # the entry point is the one place that catches everything
        logger.exception("unexpected error")
        fail(f"AlgorithmError: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}")
        return EXIT_ALGORITHM_ERROR


def run_training(train_fn: Callable[[TrainingEnvironment], None]) -> int:
    """Run ``train_fn`` under the container contract; returns the process exit code."""
    configure_logging()
    paths = Paths.from_env()
    signal.signal(signal.SIGTERM, _on_sigterm)

    def job() -> int:
        train_fn(TrainingEnvironment.load())
        return 0

    try:
        code = _catch_all(job, lambda reason: _fail(paths, reason))
    except TrainingTerminated:
        logger.warning("training stopped by the platform (SIGTERM)")
        _fail(paths, "Training stopped by SIGTERM (StopTrainingJob or MaxRuntimeInSeconds).", clear_model=False)
        return EXIT_TERMINATED
    if code == 0:
        _write(paths.success_file, "")
    return code


def run_processing(job: Callable[[Sequence[str]], int], argv: Sequence[str], failure: ExitMessage) -> int:
    """Run a processing job (logging already set up): its exit code, or the catch-all's with ``failure`` written."""
    return _catch_all(lambda: job(argv), failure.write)


def dense_algorithm_main(package: str, handler: str, argv: Sequence[str] | None = None) -> int:
    """The entry of a dense-matrix built-in (K-Means, PCA): ``containers.<package>.train:train`` and ``handler``.

    Only the standard library is imported before :func:`limit_native_threads` runs: numpy and the BLAS behind it read
    their thread counts when they load, in the ``train``/``serve`` functions below. For training, idle OpenBLAS
    workers are also told to sleep at once instead of spinning for ~2^28 cycles after each call: between the BLAS
    calls the Arrow CSV parser and the recordIO decoder need those cores (a value the user set wins).
    """
    limit_native_threads()

    def train(env: TrainingEnvironment) -> None:
        os.environ.setdefault(*BLAS_IDLE_SPIN)  # numpy, and OpenBLAS with it, is first imported just below
        import_module(f"{package}.train").train(env)

    def serve() -> int:
        from containers.toolkit.model_server.serving import serve as serve_model

        return serve_model(handler)

    return run_container(ContainerEntry(train=train, serve=serve), argv)


def _fail(paths: Paths, reason: str, *, clear_model: bool = True) -> None:
    if clear_model:
        _empty_dir(paths.model_dir)
    if not paths.failure_file.exists():  # the first writer wins, as in the training toolkit
        _write(paths.failure_file, reason)


def _empty_dir(directory: Path) -> None:
    if not directory.is_dir():
        return
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError:
        logger.exception("could not write %s", path)
