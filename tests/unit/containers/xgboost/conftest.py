"""Helpers for the XGBoost container tests: /opt/ml-shaped host directories, the train entry as a subprocess,
and the German credit data set prepared the way the container reads it (label first, one-hot, no header)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[4]
GERMAN_CREDIT = REPO / "data" / "german_credit.csv"


@dataclass
class Channel:
    files: dict[str, bytes]  # relative path -> content
    content_type: str | None = "text/csv"
    input_mode: str = "File"
    distribution: str = "FullyReplicated"


def layout_host(
    base: Path,
    hyperparameters: dict[str, str],
    channels: dict[str, Channel],
    *,
    hosts: tuple[str, ...] = ("algo-1",),
    current_host: str = "algo-1",
    checkpoints: bool = False,
) -> Path:
    """Write one host's /opt/ml tree under ``base`` (config files, channel data, empty model/output dirs)."""
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    data_config = {}
    for name, channel in channels.items():
        entry = {
            "TrainingInputMode": channel.input_mode,
            "S3DistributionType": channel.distribution,
            "RecordWrapperType": "None",
        }
        if channel.content_type:
            entry["ContentType"] = channel.content_type
        data_config[name] = entry
        root = base / "input" / "data" / name
        root.mkdir(parents=True, exist_ok=True)
        for relative, content in channel.files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_bytes(content)
    (config / "inputdataconfig.json").write_text(json.dumps(data_config))
    resource = {"current_host": current_host, "hosts": list(hosts), "network_interface_name": "eth0"}
    (config / "resourceconfig.json").write_text(json.dumps(resource))
    if checkpoints:
        local = base / "checkpoints"
        local.mkdir(parents=True, exist_ok=True)
        (config / "checkpointconfig.json").write_text(json.dumps({"LocalPath": str(local), "S3Uri": "s3://b/ck"}))
    (base / "model").mkdir(parents=True, exist_ok=True)
    (base / "output" / "data").mkdir(parents=True, exist_ok=True)
    return base


def container_env(base: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["SAGEMAKER_BASE_DIR"] = str(base)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def start_train(base: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "containers.xgboost", "train"],
        cwd=REPO,
        env=container_env(base, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_train(base: Path, timeout: float = 120, **extra: str) -> tuple[int, str]:
    process = start_train(base, **extra)
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def failure_text(base: Path) -> str:
    path = base / "output" / "failure"
    return path.read_text() if path.exists() else ""


def model_files(base: Path) -> list[str]:
    return sorted(path.name for path in (base / "model").iterdir())


def to_csv(labels: np.ndarray, features: np.ndarray) -> bytes:
    frame = pd.DataFrame(np.column_stack([labels, features]))
    return frame.to_csv(header=False, index=False).encode()


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@pytest.fixture(scope="session")
def german_credit() -> Dataset:
    """German credit, one-hot encoded, split 70/30 with a fixed seed (``risk`` = 1 is good credit)."""
    frame = pd.read_csv(GERMAN_CREDIT)
    labels = frame.pop("risk").to_numpy(dtype=np.float64)
    features = pd.get_dummies(frame, dtype=np.float64).to_numpy(dtype=np.float64)
    order = np.random.default_rng(7).permutation(len(labels))
    cut = int(0.7 * len(labels))
    train, test = order[:cut], order[cut:]
    return Dataset(features[train], labels[train], features[test], labels[test])


@pytest.fixture(scope="session")
def small_binary() -> Dataset:
    """A tiny separable-ish binary problem for fast contract tests."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.3, size=200) > 0).astype(np.float64)
    return Dataset(x[:150], y[:150], x[150:], y[150:])
