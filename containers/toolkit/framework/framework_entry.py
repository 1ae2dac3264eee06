"""The entry of a framework image (scikit-learn, PyTorch): ``train`` runs the user's entry point, ``serve`` the
user's inference script, and any other command runs as it is, as ``docker run <image> <command>`` does on the AWS
framework images, which processing jobs use (docs/containers.md, "Framework containers").
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from containers.toolkit.entrypoint import ContainerEntry, configure_processing_logging, run_container
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.errors import AlgorithmError, UserError, failure_line
from containers.toolkit.framework.script_mode import ExecuteUserScriptError, run_process

logger = logging.getLogger(__name__)

__all__ = ["framework_main", "run_image_command"]

_PYTHON_NAMES = ("python", "python3", f"python3.{sys.version_info.minor}")


def run_image_command(argv: Sequence[str]) -> int:
    """Run ``argv`` (``python``/``python3`` is this interpreter); a non-zero exit is a failure with its stderr."""
    if not argv:
        raise UserError("This image runs 'train', 'serve' or a command (AppSpecification.ContainerEntrypoint).")
    command = [sys.executable if Path(argv[0]).name in _PYTHON_NAMES else argv[0], *argv[1:]]
    try:
        run_process(command, cwd=Path.cwd(), env=os.environ, error=ExecuteUserScriptError)
    except ExecuteUserScriptError as exc:
        # A processing job's FailureReason names the command's last error line, as the processing image's runner
        # does, so a job reads the same whichever image ran it (docs/containers.md#framework-containers).
        raise AlgorithmError(f"{failure_line(exc.stderr.splitlines())}, exit code: {exc.exit_code}") from exc
    return 0


def framework_main(
    train: Callable[[TrainingEnvironment], None], serve: Callable[[], int], argv: Sequence[str] | None = None
) -> int:
    """``python -m containers.<framework> train|serve|<command>``: a framework image's ENTRYPOINT."""
    entry = ContainerEntry(train=train, serve=serve, process=run_image_command, configure_logs=_configure_logs)
    return run_container(entry, argv)


def _configure_logs() -> None:
    configure_processing_logging()  # stderr: a command's stdout is its own
