"""``python -m containers.clarify``: the Clarify image's managed entrypoint (arguments are ignored, as on AWS).

Success: exit 0 with results under ``/opt/ml/processing/output``. Failure: the reason in ``/opt/ml/output/failure``
and ``/opt/ml/output/message`` (``ClientError: ...`` for bad config or data, exit 1; ``AlgorithmError: ...``, exit 2),
written by the toolkit's container entry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from containers.clarify.analysis import run_job
from containers.clarify.config import load_config
from containers.clarify.paths import ProcessingPaths
from containers.toolkit.entrypoint import MESSAGE_LIMIT, ContainerEntry, ExitMessage, exit_process, run_container

logger = logging.getLogger("containers.clarify")


def _failure_files() -> ExitMessage:
    """``output/failure`` (what our runtime reads) and ``output/message`` (processing's own name); first writer wins."""
    return ExitMessage(ProcessingPaths.from_env().failure_files, limit=MESSAGE_LIMIT)


def analyse(argv: Sequence[str]) -> int:
    paths = ProcessingPaths.from_env()
    run_job(load_config(paths.config_file), paths)
    logger.info("Clarify analysis finished")
    return 0


if __name__ == "__main__":
    exit_process(run_container(ContainerEntry(process=analyse, failure=_failure_files)))
