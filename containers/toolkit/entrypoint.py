"""Process entry points: the only place that catches everything.

``run_training(train_fn)`` loads the environment, runs the algorithm, and turns the result into SageMaker's signals:
``/opt/ml/output/success`` and exit 0, or ``/opt/ml/output/failure`` (a readable reason) and a non-zero exit. On
failure the model directory is emptied, so a half-written model is never mistaken for a result. SIGTERM
(StopTrainingJob, MaxRuntimeInSeconds) raises ``TrainingTerminated`` in the main thread
so algorithms can save what they have.
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from containers.toolkit.environment import Paths, TrainingEnvironment
from containers.toolkit.errors import AlgorithmError, ToolkitError

logger = logging.getLogger(__name__)

EXIT_USER_ERROR = 1
EXIT_ALGORITHM_ERROR = 2
EXIT_TERMINATED = 143


class TrainingTerminated(BaseException):
    """Raised in the main thread when the platform sends SIGTERM."""


def configure_logging(level: int = logging.INFO) -> None:
    """Container log format: ``[MM/DD/YYYY HH:MM:SS INFO name] message`` on stdout, like the built-ins."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(asctime)s %(levelname)s %(name)s] %(message)s", "%m/%d/%Y %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise TrainingTerminated(f"received signal {signum}")


def run_training(train_fn: Callable[[TrainingEnvironment], None]) -> int:
    """Run ``train_fn`` under the container contract; returns the process exit code."""
    configure_logging()
    paths = Paths.from_env()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        env = TrainingEnvironment.load()
        train_fn(env)
    except TrainingTerminated:
        logger.warning("training stopped by the platform (SIGTERM)")
        _fail(paths, "Training stopped by SIGTERM (StopTrainingJob or MaxRuntimeInSeconds).", clear_model=False)
        return EXIT_TERMINATED
    except ToolkitError as exc:
        logger.error("%s", exc.failure_text())
        _fail(paths, exc.failure_text())
        return EXIT_ALGORITHM_ERROR if isinstance(exc, AlgorithmError) else EXIT_USER_ERROR
    except Exception as exc:  # the entry point is the one place that catches everything
        logger.exception("unexpected error")
        text = f"AlgorithmError: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"
        _fail(paths, text)
        return EXIT_ALGORITHM_ERROR
    _write(paths.success_file, "")
    return 0


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
        path.write_text(text)
    except OSError:
        logger.exception("could not write %s", path)


def main_for(
    train: Callable[[TrainingEnvironment], None], serve: Callable[[], int], argv: list[str] | None = None
) -> int:
    """``python -m containers.<algo> train|serve``: the image's ENTRYPOINT."""
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "train"
    if command == "train":
        return run_training(train)
    if command == "serve":
        configure_logging()
        return serve()
    sys.stderr.write(f"unknown command {command!r}: expected 'train' or 'serve'\n")
    return 2
