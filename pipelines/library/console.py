"""Console set-up shared by the pipelines' command-line entry points (run, gate, deploy, monitor)."""

from __future__ import annotations

import argparse
import logging
import warnings

from pipelines.library.run_settings import Target

_NOISY = ("sagemaker", "sagemaker.config", "botocore", "urllib3")


def configure_cli_logging(verbose: bool) -> None:
    """Our INFO lines with --verbose, warnings otherwise; the SDK's and botocore's chatter only on errors."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="sagemaker")


def say(line: str) -> None:
    """A progress line of a command, shown at once."""
    print(line, flush=True)  # noqa: T201


def command_parser(doc: str | None) -> argparse.ArgumentParser:
    """What every pipelines command's parser starts with: its description, ``--target`` and ``--verbose``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--target", choices=[t.value for t in Target], default=Target.LOCAL.value)
    parser.add_argument("--verbose", action="store_true")
    return parser
