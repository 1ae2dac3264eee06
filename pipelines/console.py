"""Console set-up shared by the pipelines' command-line entry points (run, deploy, monitor)."""

from __future__ import annotations

import logging
import warnings

_NOISY = ("sagemaker", "sagemaker.config", "botocore", "urllib3")


def configure_cli_logging(verbose: bool) -> None:
    """Our INFO lines with --verbose, warnings otherwise; the SDK's and botocore's chatter only on errors."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="sagemaker")
