"""The analyzer's process entry: the one place that catches everything and turns it into an exit message + code.

Processing's exit message lives in ``/opt/ml/output/message`` (it becomes ``ExitMessage``, and ``FailureReason``
on failure): ``Completed: …`` or ``CompletedWithViolations: Job completed successfully with N violations.`` with
exit code 0; ``ClientError: …`` with exit 1 for a ``UserError``; ``AlgorithmError: …`` with exit 2 otherwise.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from containers.model_monitor.analyzer import run
from containers.model_monitor.config import AnalyzerConfig
from containers.toolkit.entrypoint import configure_logging
from containers.toolkit.environment import Paths
from containers.toolkit.errors import AlgorithmError, ToolkitError

logger = logging.getLogger(__name__)

__all__ = ["main"]

EXIT_USER_ERROR = 1
EXIT_ALGORITHM_ERROR = 2
MESSAGE_LIMIT = 1024


def main() -> int:
    configure_logging()
    message_file = Paths.from_env().output_dir / "message"
    try:
        config = AnalyzerConfig.load()
        outcome = run(config)
    except ToolkitError as exc:
        logger.error("%s", exc.failure_text())
        _write(message_file, exc.failure_text())
        return EXIT_ALGORITHM_ERROR if isinstance(exc, AlgorithmError) else EXIT_USER_ERROR
    except Exception as exc:  # the entry point is the one place that catches everything
        logger.exception("unexpected error")
        _write(message_file, f"AlgorithmError: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}")
        return EXIT_ALGORITHM_ERROR
    logger.info("%s", outcome.message)
    _write(message_file, outcome.message)
    return 0


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text[:MESSAGE_LIMIT], encoding="utf-8")
    except OSError as exc:
        logger.warning("cannot write the exit message to %s: %s", path, exc)
