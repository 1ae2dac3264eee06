"""endpoint_cold_start: CreateEndpoint -> InService for the XGBoost model, against starting its container directly.

An XGBoost model (the ``invoke_overhead`` one) is stored in the in-process stack's S3. ``seconds`` is the median over
a few endpoints of CreateEndpoint until DescribeEndpoint says InService and a first InvokeEndpoint answers; the anchor
(``direct_s``) is the same serving container started through the runtime until its ``/ping`` answers, measured in this
run on the same machine: the floor any endpoint start pays. Goal: seconds <= 2 (SageMaker takes minutes; SDK local
mode tens of seconds with Docker).

Where Docker, docker-compose and the image tagged as the AWS XGBoost URI are there (``make images``), ``sdk_local_s``
is the SageMaker SDK v2's local mode deploying the same model (``Model.deploy(instance_type="local")``) until its first
prediction answers, once; otherwise ``sdk_local`` says what is missing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path

import boto3

from benchmarks._sdk_local_mode import deploy_seconds, why_unavailable
from benchmarks.common import emit, work_dir
from benchmarks.invoke_overhead import BUCKET, IMAGE, csv, model_archive
from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from infra.runtime.api import ServingSpec
from infra.runtime.images import resolve_image
from infra.runtime.model_archive import safe_extract
from infra.runtime.process import ProcessRuntime

ENDPOINTS = 5


def _stored_model(url: str, archive: Path) -> str:
    kwargs = {"endpoint_url": url, "region_name": "us-east-1"}
    s3, sm = boto3.client("s3", **kwargs), boto3.client("sagemaker", **kwargs)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="model.tar.gz", Body=archive.read_bytes())
    name = f"cold-{uuid.uuid4().hex[:8]}"
    container = {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"}
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/Bench", PrimaryContainer=container)
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    return name


def through_stack(url: str, config: str, body: bytes) -> float:
    kwargs = {"endpoint_url": url, "region_name": "us-east-1"}
    sm, runtime = boto3.client("sagemaker", **kwargs), boto3.client("sagemaker-runtime", **kwargs)
    name = f"cold-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    while (status := sm.describe_endpoint(EndpointName=name)["EndpointStatus"]) == "Creating":
        time.sleep(0.02)
    if status != "InService":
        raise RuntimeError(f"endpoint {name} is {status}")
    runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv")
    seconds = time.perf_counter() - start
    sm.delete_endpoint(EndpointName=name)
    return seconds


def direct(base: Path, archive: Path) -> float:
    base.mkdir(parents=True)
    runtime = ProcessRuntime(base / "direct-runtime")
    model_dir = base / "direct-model"
    safe_extract(archive, model_dir)
    try:
        start = time.perf_counter()
        spec = ServingSpec(
            name="cold-direct", image=resolve_image(IMAGE), work_dir=base / "direct-opt-ml", model_dir=model_dir
        )
        container = runtime.start_serving(spec)
        seconds = time.perf_counter() - start
        container.stop()
        return seconds
    finally:
        runtime.shutdown()


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir("endpoint_cold_start")))
    archive, x = model_archive(base)
    body = csv(x[:1])
    direct_s = statistics.median(direct(base / f"d{i}", archive) for i in range(3))
    stack = LocalStack(StackSettings(data_dir=base / "stack", port=0))
    url = stack.start()
    try:
        config = _stored_model(url, archive)
        times = [through_stack(url, config, body) for _ in range(ENDPOINTS)]
    finally:
        stack.stop()
    seconds = statistics.median(times)
    missing = why_unavailable(IMAGE)
    sdk_local: dict[str, float | str] = (
        {"sdk_local": missing} if missing else {"sdk_local_s": deploy_seconds(IMAGE, archive, body, base / "sdk")}
    )
    emit(
        "endpoint_cold_start",
        f"CreateEndpoint -> InService -> first InvokeEndpoint, median of {ENDPOINTS}; "
        "anchor: the same serving container started through the runtime until /ping answers; "
        "sdk_local_s: SDK v2 local mode's deploy until the first prediction, once",
        seconds=seconds,
        max_s=max(times),
        direct_s=direct_s,
        ratio=seconds / direct_s,
        **sdk_local,
    )


if __name__ == "__main__":
    main()
