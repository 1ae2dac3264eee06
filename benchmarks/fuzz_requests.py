"""fuzz_requests: requests per second the fuzz tier sustains, and how many of its answers are 5xx (goal: 0).

The fuzz tier's generator (``tests/integration/fuzz_generator.py``: botocore's SageMaker model, a fixed seed) sends
``REQUESTS`` requests over every operation the stack implements to a fresh in-process stack, each on a new connection,
as ``tests/integration/test_edge_fuzz.py`` does. The anchor, in the same run and on the same stack: a loop of valid
``DescribeTrainingJob`` requests for a finished job, sent the same way. ``ratio`` is fuzz requests/s over anchor
requests/s. ``bad_shapes`` counts 4xx answers without AWS's JSON error shape (also goal 0).
"""

from __future__ import annotations

import json
import time
import uuid

import boto3

from benchmarks.common import emit, work_dir
from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from tests.integration.fuzz_generator import (
    fuzz_requests,
    has_aws_error_shape,
    implemented_operations,
    post,
    sagemaker_model,
)

REQUESTS = 3000
ANCHOR_REQUESTS = 1000
BUCKET = "bench-fuzz"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/Bench"


def finished_training_job(url: str) -> str:
    kwargs = {"endpoint_url": url, "region_name": "us-east-1"}
    sm, s3 = boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="train/a.csv", Body=b"".join(b"%d,%d\n" % (i % 2, i) for i in range(200)))
    name = f"anchor-{uuid.uuid4().hex[:8]}"
    sm.create_training_job(
        TrainingJobName=name,
        RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        HyperParameters={"num_round": "2"},
    )
    while sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in ("InProgress", "Stopping"):
        time.sleep(0.5)
    return name


def anchor_rate(port: int, job: str) -> float:
    body = json.dumps({"TrainingJobName": job}).encode()
    start = time.perf_counter()
    for _ in range(ANCHOR_REQUESTS):
        status, _ = post(port, "DescribeTrainingJob", body)
        if status != 200:
            raise RuntimeError(f"the anchor's DescribeTrainingJob answered {status}")
    return ANCHOR_REQUESTS / (time.perf_counter() - start)


def fuzz_rate(stack: LocalStack) -> tuple[float, int, int, int]:
    """(requests/s, 5xx, 4xx without AWS's error shape, operations covered)."""
    model = sagemaker_model()
    operations = implemented_operations(stack, model)
    port = stack.settings.port
    server_errors = bad_shapes = 0
    start = time.perf_counter()
    for operation, _params, body in fuzz_requests(model, operations, REQUESTS):
        status, answer = post(port, operation, body)
        server_errors += status >= 500
        bad_shapes += 400 <= status < 500 and not has_aws_error_shape(answer)
    return REQUESTS / (time.perf_counter() - start), server_errors, bad_shapes, len(operations)


def main() -> None:
    data_dir = work_dir("fuzz_requests") / f"stack-{uuid.uuid4().hex[:6]}"
    stack = LocalStack(StackSettings(data_dir=data_dir, port=0, region="us-east-1"))
    stack.start()
    try:
        job = finished_training_job(stack.url)
        anchor = anchor_rate(stack.settings.port, job)
        rate, server_errors, bad_shapes, covered = fuzz_rate(stack)
    finally:
        stack.stop()
    emit(
        "fuzz_requests",
        f"goal 5xx == 0; {REQUESTS} fuzzed requests over {covered} operations; anchor: valid DescribeTrainingJob",
        **{"5xx": server_errors},
        requests_per_s=rate,
        anchor_requests_per_s=anchor,
        ratio=rate / anchor,
        bad_shapes=bad_shapes,
    )


if __name__ == "__main__":
    main()
