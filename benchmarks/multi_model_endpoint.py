"""multi_model_endpoint: a multi-model XGBoost endpoint against a single-model one serving the same booster.

Both endpoints run the built-in XGBoost container on the in-process stack (docs/deploy.md#multi-model-endpoints).
``load_ms``: the median first request for a TargetModel not loaded yet (download, extract, ``POST /models``,
predict), over 10 models. ``warm_p50_overhead_ms``: the p50 of one-row requests to a loaded TargetModel minus the
p50 of the same requests to the single-model endpoint (the anchor, measured in the same run); goal <= 0.5 ms.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3

from benchmarks.common import emit, percentile, work_dir
from benchmarks.invoke_overhead import BUCKET, IMAGE, csv, deploy, model_archive
from infra.config import StackSettings
from infra.control_plane.server import LocalStack

MODELS = 10
REQUESTS = 300
ROLE = "arn:aws:iam::123456789012:role/Bench"


def deploy_multi_model(url: str, archive: Path) -> str:
    kwargs = {"endpoint_url": url, "region_name": "us-east-1"}
    s3, sm = boto3.client("s3", **kwargs), boto3.client("sagemaker", **kwargs)
    for index in range(MODELS):
        s3.put_object(Bucket=BUCKET, Key=f"mme/m{index}.tar.gz", Body=archive.read_bytes())
    name = f"bench-mme-{uuid.uuid4().hex[:8]}"
    container = {"Image": IMAGE, "Mode": "MultiModel", "ModelDataUrl": f"s3://{BUCKET}/mme/"}
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    while (status := sm.describe_endpoint(EndpointName=name)["EndpointStatus"]) == "Creating":
        time.sleep(0.1)
    if status != "InService":
        raise RuntimeError(f"endpoint {name} is {status}")
    return name


def timed_invokes(runtime: Any, name: str, bodies: list[bytes], target: str | None) -> list[float]:
    extra = {"TargetModel": target} if target else {}
    times = []
    for body in bodies:
        start = time.perf_counter()
        runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv", **extra)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir("multi_model_endpoint")))
    archive, x = model_archive(base)
    stack = LocalStack(StackSettings(data_dir=base / "stack", port=0))
    url = stack.start()
    try:
        single = deploy(url, archive)
        multi = deploy_multi_model(url, archive)
        runtime = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1")
        one_row = [csv(x[i][None, :]) for i in range(REQUESTS)]
        loads = [timed_invokes(runtime, multi, one_row[:1], f"m{i}.tar.gz")[0] for i in range(MODELS)]
        timed_invokes(runtime, single, one_row[:50], None)  # warm up both
        timed_invokes(runtime, multi, one_row[:50], "m0.tar.gz")
        anchor = timed_invokes(runtime, single, one_row, None)
        warm = timed_invokes(runtime, multi, one_row, "m0.tar.gz")
    finally:
        stack.stop()
    warm_p50, anchor_p50 = percentile(warm, 50) * 1e3, percentile(anchor, 50) * 1e3
    emit(
        "multi_model_endpoint",
        f"boto3 one-row CSV InvokeEndpoint; {MODELS} TargetModels loaded on first use vs a single-model endpoint",
        warm_p50_overhead_ms=warm_p50 - anchor_p50,
        warm_p50_ms=warm_p50,
        single_model_p50_ms=anchor_p50,
        load_ms=percentile(loads, 50) * 1e3,
        ratio=warm_p50 / anchor_p50,
    )


if __name__ == "__main__":
    main()
