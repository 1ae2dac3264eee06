"""``python -m containers.clarify``: the Clarify image's managed entrypoint (arguments are ignored, as on AWS).

Success: exit 0 with results under ``/opt/ml/processing/output``. Failure: the reason in ``/opt/ml/output/failure``
and ``/opt/ml/output/message`` (``ClientError: ...`` for bad config or data, exit 1; ``AlgorithmError: ...``, exit 2).
"""

from __future__ import annotations

import logging
import sys
import traceback

from containers.clarify.analysis import run_job
from containers.clarify.config import load_config
from containers.clarify.paths import ProcessingPaths
from containers.toolkit.entrypoint import configure_logging
from containers.toolkit.errors import AlgorithmError, ToolkitError

logger = logging.getLogger("containers.clarify")

EXIT_USER_ERROR = 1
EXIT_ALGORITHM_ERROR = 2


def _fail(paths: ProcessingPaths, text: str) -> None:
    for path in paths.failure_files:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text(text[:1024], encoding="utf-8")
        except OSError:
            logger.exception("could not write %s", path)


def main() -> int:
    configure_logging()
    paths = ProcessingPaths.from_env()
    try:
        config = load_config(paths.config_file)
        run_job(config, paths)
    except ToolkitError as exc:
        logger.error("%s", exc.failure_text())
        _fail(paths, exc.failure_text())
        return EXIT_ALGORITHM_ERROR if isinstance(exc, AlgorithmError) else EXIT_USER_ERROR
    except Exception as exc:  # the entry point is the one place that catches everything
        logger.exception("unexpected error")
        _fail(paths, f"AlgorithmError: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}")
        return EXIT_ALGORITHM_ERROR
    logger.info("Clarify analysis finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
