"""invoke_overhead: InvokeEndpoint through the edge vs a direct POST to the same XGBoost serving container.

An XGBoost model (10 features, 20 rounds) is deployed on the in-process stack. Latency: one-row CSV requests over a
keep-alive connection, first to ``/endpoints/<name>/invocations`` on the edge, then to the container's own
``/invocations`` (its URL read from the endpoint's deployment). Throughput: 8 concurrent clients sending 100-row
requests both ways. Goals: p50_overhead_ms <= 2, throughput_ratio >= 0.8.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import boto3
import numpy as np
import requests
import xgboost as xgb

from benchmarks.common import emit, percentile, work_dir
from benchmarks.xgboost_serving import http_latency
from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from infra.runtime.model_archive import pack_model

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
FEATURES = 10
CLIENTS = 8
ROWS_PER_BATCH = 100
BATCHES_PER_CLIENT = 40
BUCKET = "bench-invoke-overhead"


def model_archive(base: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5000, FEATURES)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(x, label=y), 20)
    model_dir = base / "model"
    model_dir.mkdir()
    booster.save_model(str(model_dir / "xgboost-model"))
    return pack_model(model_dir, base / "model.tar.gz"), x


def csv(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(f"{v:.5g}" for v in row) for row in rows).encode()


def deploy(url: str, archive: Path) -> str:
    kwargs = {"endpoint_url": url, "region_name": "us-east-1"}
    s3, sm = boto3.client("s3", **kwargs), boto3.client("sagemaker", **kwargs)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="model.tar.gz", Body=archive.read_bytes())
    name = f"bench-{uuid.uuid4().hex[:8]}"
    container = {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"}
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/Bench", PrimaryContainer=container)
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    while (status := sm.describe_endpoint(EndpointName=name)["EndpointStatus"]) == "Creating":
        time.sleep(0.1)
    if status != "InService":
        raise RuntimeError(f"endpoint {name} is {status}")
    return name


def _client(url: str, bodies: list[bytes]) -> int:
    session = requests.Session()
    for body in bodies:
        session.post(url, data=body, headers={"Content-Type": "text/csv"}).raise_for_status()
    return len(bodies)


def throughput(pool: ProcessPoolExecutor, url: str, bodies: list[bytes]) -> float:
    """Clients run in their own processes, so they do not share the edge's GIL (as real clients would not)."""
    start = time.perf_counter()
    done = sum(pool.map(_client, [url] * CLIENTS, [bodies] * CLIENTS))
    return done / (time.perf_counter() - start)


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir("invoke_overhead")))
    archive, x = model_archive(base)
    stack = LocalStack(StackSettings(data_dir=base / "stack", port=0))
    url = stack.start()
    try:
        name = deploy(url, archive)
        instance = stack.backend().endpoints.store.find(name).deployment.variants[0].instances[0]  # type: ignore[union-attr]
        edge, direct = f"{url}/endpoints/{name}/invocations", f"{instance.container.url}/invocations"
        batches = [csv(x[i * ROWS_PER_BATCH : (i + 1) * ROWS_PER_BATCH]) for i in range(BATCHES_PER_CLIENT)]
        http_latency(edge, x[:50]), http_latency(direct, x[:50])  # warm up
        edge_times, direct_times = http_latency(edge, x), http_latency(direct, x)
        with ProcessPoolExecutor(CLIENTS) as pool:
            throughput(pool, direct, batches[:5])  # start the client processes
            edge_tp, direct_tp = throughput(pool, edge, batches), throughput(pool, direct, batches)
    finally:
        stack.stop()
    p50_edge, p50_direct = percentile(edge_times, 50) * 1e3, percentile(direct_times, 50) * 1e3
    emit(
        "invoke_overhead",
        f"one-row CSV over keep-alive HTTP, edge vs container; "
        f"throughput {CLIENTS} client processes x {ROWS_PER_BATCH}-row requests",
        p50_overhead_ms=p50_edge - p50_direct,
        p50_ms=p50_edge,
        direct_p50_ms=p50_direct,
        p99_ms=percentile(edge_times, 99) * 1e3,
        throughput_ratio=edge_tp / direct_tp,
        requests_per_s=edge_tp,
    )


if __name__ == "__main__":
    main()
