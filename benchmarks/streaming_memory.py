"""streaming_memory: peak resident memory of the K-Means and PCA containers training on a ~3 GB CSV channel.

The channel (50 features, header-less CSV) is generated under /tmp and deleted afterwards; its size comes from
``SAGESTACK_BENCH_STREAMING_GB`` (default 3). Each container runs through its CLI entry as a subprocess with
``SAGEMAKER_BASE_DIR``, and its own peak RSS is read from ``wait4``'s rusage. Goal: peak_rss_mb <= 1024.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FEATURES = 50
CHUNK_ROWS = 50_000


def generate_channel(path: Path, target_bytes: int) -> int:
    """Write seeded blob rows until ``target_bytes``; a few distinct chunks are cycled to keep generation fast."""
    rng = np.random.default_rng(5)
    centers = rng.normal(scale=10, size=(10, FEATURES))
    chunks = []
    for _ in range(4):
        rows = centers[rng.integers(10, size=CHUNK_ROWS)] + rng.normal(size=(CHUNK_ROWS, FEATURES))
        buffer = io.BytesIO()
        np.savetxt(buffer, rows, delimiter=",", fmt="%.5f")
        chunks.append(buffer.getvalue())
    written = 0
    with path.open("wb") as handle:
        while written < target_bytes:
            chunk = chunks[(written // len(chunks[0])) % len(chunks)]
            handle.write(chunk)
            written += len(chunk)
    return written


def host(base: Path, channel_file: Path, hyperparameters: dict[str, str]) -> Path:
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({"train": {"ContentType": "text/csv"}}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    channel = base / "input" / "data" / "train"
    channel.mkdir(parents=True)
    os.link(channel_file, channel / channel_file.name)
    return base


def run(module: str, base: Path) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one container training run."""
    env = dict(os.environ, SAGEMAKER_BASE_DIR=str(base), PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "train"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{module} failed: {(base / 'output' / 'failure').read_text()[:2000]}")
    return usage.ru_maxrss / 1024.0, elapsed


def main() -> None:
    gigabytes = float(os.environ.get("SAGESTACK_BENCH_STREAMING_GB", "3"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-streaming-", dir="/tmp"))
    try:
        data = tmp / "train.csv"
        size = generate_channel(data, int(gigabytes * 1024**3))
        kmeans_hp = {"k": "10", "feature_dim": str(FEATURES), "mini_batch_size": "5000"}
        pca_hp = {"feature_dim": str(FEATURES), "num_components": "10", "mini_batch_size": "500"}
        kmeans_mb, kmeans_s = run("containers.kmeans", host(tmp / "kmeans", data, kmeans_hp))
        pca_mb, pca_s = run("containers.pca", host(tmp / "pca", data, pca_hp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"bench streaming_memory peak_rss_mb={max(kmeans_mb, pca_mb):.0f} kmeans_rss_mb={kmeans_mb:.0f} "
        f"pca_rss_mb={pca_mb:.0f} channel_mb={size / 1024**2:.0f} kmeans_s={kmeans_s:.1f} pca_s={pca_s:.1f} "
        f"(K-Means k=10 and PCA 10 components on a {size / 1024**3:.2f} GB CSV channel, {FEATURES} features)",
        flush=True,
    )


if __name__ == "__main__":
    main()
