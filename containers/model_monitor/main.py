"""The analyzer's job: run the analysis and leave its outcome as processing's exit message.

Processing's exit message lives in ``/opt/ml/output/message`` (it becomes ``ExitMessage``, and ``FailureReason``
on failure): ``Completed: …`` or ``CompletedWithViolations: Job completed successfully with N violations.`` with
exit code 0; ``ClientError: …`` with exit 1 for a ``UserError``; ``AlgorithmError: …`` with exit 2 otherwise (the
failures are written by the toolkit's container entry, :func:`containers.toolkit.entrypoint.run_container`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from containers.model_monitor.analyzer import run
from containers.model_monitor.config import AnalyzerConfig
from containers.toolkit.entrypoint import ContainerEntry, ExitMessage, run_container

logger = logging.getLogger(__name__)

__all__ = ["analyze", "main"]


def analyze(argv: Sequence[str]) -> int:
    """The analysis (arguments are ignored, as AWS does); its outcome is the exit message."""
    outcome = run(AnalyzerConfig.load())
    logger.info("%s", outcome.message)
    ExitMessage.processing().write(outcome.message)
    return 0


def main() -> int:
    return run_container(ContainerEntry(process=analyze), [])
