"""restart_recovery: from starting the stack to five previously InService endpoints answering again.

A stack is served as a subprocess (``python -m infra.cli serve``, as ``make up`` runs it) on a fresh data directory;
five XGBoost endpoints are created (the anchor: CreateEndpoint x 5 -> all answering, measured in this run), the
stack is stopped with SIGTERM (``make down``) and started again; ``seconds`` runs from that start to every endpoint
answering an InvokeEndpoint. Goal: seconds <= 5 (SageMaker takes minutes to create one endpoint).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from benchmarks.common import emit, work_dir
from benchmarks.invoke_overhead import IMAGE, csv, model_archive

ENDPOINTS = 5
BUCKET = "bench-restart-recovery"
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SAGESTACK_DATA_DIR": str(data_dir), "SAGESTACK_PORT": str(port)}
    log = (data_dir.parent / "stack.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", "infra.cli", "serve"], cwd=ROOT, env=env, stdout=log, stderr=log)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sagestack/health", timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"the stack exited; see {data_dir.parent / 'stack.log'}") from None
            time.sleep(0.05)


def answering(url: str, names: list[str], body: bytes) -> None:
    """Block until every endpoint answers an InvokeEndpoint."""
    runtime = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1")
    for name in names:
        while True:
            try:
                runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv")
                break
            except ClientError:
                time.sleep(0.05)


def create(url: str, archive: Path) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    sm = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="model.tar.gz", Body=archive.read_bytes())
    container = {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"}
    sm.create_model(
        ModelName="restart", ExecutionRoleArn="arn:aws:iam::123456789012:role/Bench", PrimaryContainer=container
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "restart",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    sm.create_endpoint_config(EndpointConfigName="restart", ProductionVariants=[variant])
    names = [f"restart-{i}-{uuid.uuid4().hex[:6]}" for i in range(ENDPOINTS)]
    with ThreadPoolExecutor(ENDPOINTS) as pool:
        list(pool.map(lambda name: sm.create_endpoint(EndpointName=name, EndpointConfigName="restart"), names))
    return names


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir("restart_recovery")))
    archive, x = model_archive(base)
    body = csv(x[:1])
    data_dir, port = base / "stack", _free_port()
    url = f"http://127.0.0.1:{port}"
    process = serve(data_dir, port)
    try:
        start = time.perf_counter()
        names = create(url, archive)
        answering(url, names, body)
        first_s = time.perf_counter() - start
        time.sleep(1.5)  # past the S3 mirror's sync
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait()
    start = time.perf_counter()
    process = serve(data_dir, port)
    try:
        answering(url, names, body)
        seconds = time.perf_counter() - start
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait()
    emit(
        "restart_recovery",
        f"serve start -> {ENDPOINTS} stored InService XGBoost endpoints answering; anchor: creating them in this run",
        seconds=seconds,
        first_create_s=first_s,
        ratio=seconds / first_s,
    )


if __name__ == "__main__":
    main()
