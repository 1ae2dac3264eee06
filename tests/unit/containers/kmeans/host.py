"""Lay out an /opt/ml-shaped host directory and run a container entry point against it (shared by kmeans/pca tests)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[4]


def csv_bytes(features: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    matrix = features if labels is None else np.column_stack([labels, features])
    buffer = io.StringIO()
    np.savetxt(buffer, matrix, delimiter=",", fmt="%.17g")
    return buffer.getvalue().encode()


def write_host(
    base: Path,
    hyperparameters: Mapping[str, object],
    channels: Mapping[str, tuple[str | None, Mapping[str, bytes]]],
    *,
    hosts: tuple[str, ...] = ("algo-1",),
    input_mode: str = "File",
) -> Path:
    """``channels``: name -> (ContentType or None, {relative file name: bytes})."""
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}))
    data_config = {}
    for name, (content_type, files) in channels.items():
        entry = {"TrainingInputMode": input_mode, "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        if content_type:
            entry["ContentType"] = content_type
        data_config[name] = entry
        channel_dir = base / "input" / "data" / name
        channel_dir.mkdir(parents=True, exist_ok=True)
        for file_name, payload in files.items():
            (channel_dir / file_name).write_bytes(payload)
    (config / "inputdataconfig.json").write_text(json.dumps(data_config))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": hosts[0], "hosts": list(hosts), "network_interface_name": "eth0"})
    )
    (base / "model").mkdir(exist_ok=True)
    (base / "output").mkdir(exist_ok=True)
    return base


def run_container(module: str, base: Path, command: str = "train", timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, SAGEMAKER_BASE_DIR=str(base), PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", module, command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
