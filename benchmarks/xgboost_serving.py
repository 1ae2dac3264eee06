"""xgboost_serving: one-row CSV /invocations latency and 8-client throughput vs in-process Booster.predict.

The model is trained in-process (50 features, 100 rounds) and served by the XGBoost container started through the
process runtime. p50/p99 latency of a one-row request over a keep-alive connection is compared with
``Booster.inplace_predict`` on one row; throughput with 8 concurrent clients sending 1,000-row requests is compared
with in-process prediction of the same batches. Goal: p50 overhead <= 2 ms.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import requests
import xgboost as xgb

from benchmarks.common import emit, percentile, work_dir
from infra.runtime.api import ServingSpec
from infra.runtime.images import resolve_image
from infra.runtime.process import ProcessRuntime

FEATURES = 50
SINGLE_REQUESTS = 2000
CLIENTS = 8
BATCH_ROWS = 1000
BATCHES_PER_CLIENT = 15


def train_model(model_dir: Path) -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20000, FEATURES)).astype(np.float32)
    y = (x[:, :5].sum(axis=1) > 0).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic", "tree_method": "hist"}, xgb.DMatrix(x, label=y), 100)
    booster.save_model(str(model_dir / "xgboost-model"))
    return booster, x


def to_csv(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(f"{v:.6g}" for v in row) for row in rows).encode()


def inprocess_latency(booster: xgb.Booster, x: np.ndarray) -> list[float]:
    booster.set_param({"nthread": 1})
    times = []
    for i in range(SINGLE_REQUESTS):
        row = x[i % len(x)][None, :]
        start = time.perf_counter()
        booster.inplace_predict(row)
        times.append(time.perf_counter() - start)
    return times


def http_latency(url: str, x: np.ndarray) -> list[float]:
    session = requests.Session()
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    bodies = [to_csv(x[i][None, :]) for i in range(min(200, len(x)))]
    times = []
    for i in range(SINGLE_REQUESTS):
        start = time.perf_counter()
        response = session.post(url, data=bodies[i % len(bodies)], headers=headers)
        times.append(time.perf_counter() - start)
        response.raise_for_status()
    return times


def _client(url: str, batches: list[bytes]) -> int:
    session = requests.Session()
    for body in batches:
        session.post(url, data=body, headers={"Content-Type": "text/csv"}).raise_for_status()
    return len(batches) * BATCH_ROWS


def http_throughput(url: str, batches: list[bytes]) -> float:
    """8 clients, each its own process (as real clients are: threads here would fight the GIL, not the server)."""
    with ProcessPoolExecutor(CLIENTS) as pool:
        list(pool.map(_client, [url] * CLIENTS, [batches[:1]] * CLIENTS))  # start the processes and connections
        start = time.perf_counter()
        rows = sum(pool.map(_client, [url] * CLIENTS, [batches] * CLIENTS))
    return rows / (time.perf_counter() - start)


def inprocess_throughput(booster: xgb.Booster, arrays: list[np.ndarray]) -> float:
    booster.set_param({"nthread": os.cpu_count() or 1})  # the anchor may use every core, as the server does
    start = time.perf_counter()
    for _ in range(CLIENTS):
        for batch in arrays:
            booster.inplace_predict(batch)
    return CLIENTS * len(arrays) * BATCH_ROWS / (time.perf_counter() - start)


def main() -> None:
    base = work_dir("xgboost_serving")
    model_dir = Path(tempfile.mkdtemp(prefix="model-", dir=base))
    booster, x = train_model(model_dir)
    arrays = [x[i * BATCH_ROWS : (i + 1) * BATCH_ROWS] for i in range(BATCHES_PER_CLIENT)]
    bodies = [to_csv(a) for a in arrays]
    runtime = ProcessRuntime(Path(tempfile.mkdtemp(prefix="runtime-", dir=base)))
    try:
        image = resolve_image("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
        container = runtime.start_serving(
            ServingSpec(name="bench-xgb-serving", image=image, work_dir=base / "serve", model_dir=model_dir)
        )
        url = container.url + "/invocations"
        http_latency(url, x[:50])  # warm up every worker
        served = http_latency(url, x)
        direct = inprocess_latency(booster, x)
        served_tp = http_throughput(url, bodies)
        direct_tp = inprocess_throughput(booster, arrays)
    finally:
        runtime.shutdown()
        shutil.rmtree(model_dir, ignore_errors=True)
    p50_http, p50_direct = percentile(served, 50) * 1e3, percentile(direct, 50) * 1e3
    emit(
        "xgboost_serving",
        f"one-row CSV over keep-alive HTTP vs inplace_predict; "
        f"throughput {CLIENTS} clients x {BATCH_ROWS}-row requests",
        p50_overhead_ms=p50_http - p50_direct,
        p50_ms=p50_http,
        p99_ms=percentile(served, 99) * 1e3,
        direct_p50_ms=p50_direct,
        throughput_ratio=served_tp / direct_tp,
        rows_per_s=served_tp,
    )


if __name__ == "__main__":
    main()
