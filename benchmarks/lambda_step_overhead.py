"""lambda_step_overhead: a one-step pipeline with a no-op Lambda step vs the same with a no-op processing step.

Both on one in-process stack, polled every 20 ms; median of 5 executions each. ``seconds`` is the Lambda step's
pipeline wall time (the function runs as a fresh local Python process). Goal: seconds <= 0.3.
"""

from __future__ import annotations

import io
import json
import shutil
import statistics
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import boto3

from benchmarks.common import emit, work_dir
from benchmarks.pipeline_step_overhead import BUCKET, KEYS, ROLE, job_request
from infra.config import StackSettings
from infra.control_plane.server import LocalStack

RUNS = 5


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("noop.py", "def handler(event, context):\n    return {'ok': 'yes'}\n")
    return buffer.getvalue()


def _median_run(sm: object, step: dict[str, object]) -> float:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"Version": "2020-12-01", "Steps": [step]})
    sm.create_pipeline(PipelineName=name, PipelineDefinition=body, RoleArn=ROLE)  # type: ignore[attr-defined]
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]  # type: ignore[attr-defined]
        while True:
            status = sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]  # type: ignore[attr-defined]
            if status != "Executing":
                break
            time.sleep(0.02)
        if status != "Succeeded":
            raise RuntimeError(f"benchmark pipeline ended {status}")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    # a fresh data directory per run: the stack is durable, so an old one would still hold bench-noop
    base = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir("lambda_step_overhead")))
    stack = LocalStack(StackSettings(data_dir=base, port=0))
    url = stack.start()
    try:
        sm = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", **KEYS)
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **KEYS)
        lam = boto3.client("lambda", endpoint_url=url, region_name="us-east-1", **KEYS)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="code/s.py", Body=b"print('ok')\n")
        arn = lam.create_function(
            FunctionName="bench-noop", Runtime="python3.11", Role=ROLE, Handler="noop.handler", Code={"ZipFile": _zip()}
        )["FunctionArn"]
        lambda_step: dict[str, object] = {
            "Name": "Noop",
            "Type": "Lambda",
            "FunctionArn": arn,
            "Arguments": {},
            "OutputParameters": [{"OutputName": "ok", "OutputType": "String"}],
        }
        processing_step: dict[str, object] = {"Name": "Noop", "Type": "Processing", "Arguments": job_request()}
        _median_run(sm, processing_step)  # warm-up
        lambda_s, processing_s = _median_run(sm, lambda_step), _median_run(sm, processing_step)
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)
    emit(
        "lambda_step_overhead",
        "one-step pipeline: no-op Lambda step vs no-op processing step (median of 5)",
        seconds=round(lambda_s, 3),
        processing_s=round(processing_s, 3),
        ratio=round(lambda_s / processing_s, 3),
    )


if __name__ == "__main__":
    main()
