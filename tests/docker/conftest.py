"""The Docker tier: every test here needs a running engine and the images from ``make images``.

Without an engine (``docker info`` fails) every test is skipped for the capability ``docker`` (tests/capabilities.py).
"""

from __future__ import annotations

import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from infra.runtime.docker import DockerRuntime
from infra.runtime.docker.docker_cli import DockerCli
from tests.capabilities import requires_capability

XGBOOST_IMAGE = "sagestack/xgboost:latest"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.requires_docker)
            item.add_marker(pytest.mark.capability("docker"))  # tests/capabilities.py: skipped, and listed, without


def require_image(ref: str) -> None:
    requires_capability(
        "docker-images", available=DockerCli().inspect("image", ref) is not None, why=f"{ref} is not built"
    )


@pytest.fixture
def docker_runtime(tmp_path: Path) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(tmp_path / "runtime", stop_grace_seconds=5.0)
    yield runtime
    runtime.shutdown()


@pytest.fixture
def xgboost_image() -> str:
    require_image(XGBOOST_IMAGE)
    return XGBOOST_IMAGE


def binary_csv(path: Path, rows: int = 300, seed: int = 0) -> Path:
    """Label-first CSV without header (the built-in XGBoost training format)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 4))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, np.column_stack([labels, features]), delimiter=",", fmt="%.6g")
    return path


def running_containers(runtime: DockerRuntime) -> list[str]:
    label = f"label=org.sagestack.managed={runtime.runtime_id}"
    done = subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True, check=True)
    return done.stdout.split()


def eventually(check: Callable[[], object], seconds: float = 120.0) -> bool:
    """Poll ``check`` until it is truthy; ``False`` after ``seconds`` (the caller asserts)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture
def xgboost_model_dir(tmp_path: Path) -> Path:
    """A directory holding a tiny ``xgboost-model`` (trained in-process: no container needed)."""
    import xgboost

    data = np.loadtxt(binary_csv(tmp_path / "model-data.csv"), delimiter=",")
    booster = xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(data[:, 1:], label=data[:, 0]), 2)
    model_dir = tmp_path / "model-dir"
    model_dir.mkdir()
    with warnings.catch_warnings():  # "saving in UBJSON by default": the name is the container's, not ours
        warnings.simplefilter("ignore", UserWarning)
        booster.save_model(str(model_dir / "xgboost-model"))
    return model_dir
