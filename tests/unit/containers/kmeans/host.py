"""Lay out an /opt/ml-shaped host directory and run a container entry point against it (shared by kmeans/pca tests)."""

from __future__ import annotations

import io
import json
import os
import socket
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
    current: str | None = None,
    distribution: str = "FullyReplicated",
) -> Path:
    """``channels``: name -> (ContentType or None, {relative file name: bytes})."""
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}))
    data_config = {}
    for name, (content_type, files) in channels.items():
        entry = {"TrainingInputMode": input_mode, "S3DistributionType": distribution, "RecordWrapperType": "None"}
        if content_type:
            entry["ContentType"] = content_type
        data_config[name] = entry
        channel_dir = base / "input" / "data" / name
        channel_dir.mkdir(parents=True, exist_ok=True)
        for file_name, payload in files.items():
            (channel_dir / file_name).write_bytes(payload)
    (config / "inputdataconfig.json").write_text(json.dumps(data_config))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": current or hosts[0], "hosts": list(hosts), "network_interface_name": "eth0"})
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


def run_hosts(module: str, bases: Mapping[str, Path], **environ: str) -> dict[str, subprocess.CompletedProcess]:
    """Run one ``train`` process per host at once, as the process runtime does (``algo-N`` at 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = {}
    for host, base in bases.items():
        env = dict(
            os.environ,
            SAGEMAKER_BASE_DIR=str(base),
            PYTHONPATH=str(REPO),
            SAGESTACK_LOCAL_HOSTS="1",
            SAGESTACK_RABIT_PORT=str(port),
            TRAINING_JOB_NAME="unit-job",
            **environ,
        )
        started[host] = subprocess.Popen(
            [sys.executable, "-m", module, "train"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    results = {}
    for host, process in started.items():
        out, _ = process.communicate(timeout=600)
        results[host] = subprocess.CompletedProcess(process.args, process.returncode, out, "")
    return results
