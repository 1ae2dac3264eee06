"""Shared fixtures for the toolkit contract tests: an /opt/ml-shaped tree under tmp_path."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from containers.toolkit.environment import TrainingEnvironment

REPO_ROOT = Path(__file__).resolve().parents[4]

# The hyperparameters of the worked example in docs/reference/container-contract.md#training-environment-variables, as a
# framework estimator writes them.
WORKED_EXAMPLE_HPS = {
    "num_round": "10",
    "eta": "0.2",
    "objective": '"binary:logistic"',
    "batch-size": "256",
    "flag": "true",
    "sagemaker_program": '"train.py"',
}


def write_config(base: Path, name: str, content: Any) -> Path:
    path = base / "input" / "config" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def make_tree(
    base: Path,
    *,
    hyperparameters: Mapping[str, Any] | None = None,
    channels: Mapping[str, Mapping[str, Any]] | None = None,
    resource: Mapping[str, Any] | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> Path:
    """Lay out the config files and channel directories SageMaker writes before ``train``."""
    for sub in ("model", "output/data", "input/config"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    if hyperparameters is not None:
        write_config(base, "hyperparameters.json", dict(hyperparameters))
    if channels is not None:
        write_config(base, "inputdataconfig.json", dict(channels))
        for name in channels:
            (base / "input" / "data" / name).mkdir(parents=True, exist_ok=True)
    if resource is not None:
        write_config(base, "resourceconfig.json", dict(resource))
    if checkpoint is not None:
        write_config(base, "checkpointconfig.json", dict(checkpoint))
    return base


EnvFactory = Callable[..., TrainingEnvironment]


@pytest.fixture
def ml_base(tmp_path: Path) -> Path:
    return tmp_path / "opt_ml"


@pytest.fixture
def make_env(ml_base: Path) -> EnvFactory:
    """Build the tree and load it, with only the given environment variables (never the test runner's)."""

    def factory(environ: Mapping[str, str] | None = None, **tree: Any) -> TrainingEnvironment:
        make_tree(ml_base, **tree)
        return TrainingEnvironment.load({"SAGEMAKER_BASE_DIR": str(ml_base), **(environ or {})})

    return factory


@pytest.fixture
def restore_process_state() -> Iterator[None]:
    """In-process ``run_training`` reconfigures root logging and SIGTERM; put both back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    sigterm = signal.getsignal(signal.SIGTERM)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    signal.signal(signal.SIGTERM, sigterm)


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python that imports the project from the repository root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_"))}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


PYTHON = sys.executable
