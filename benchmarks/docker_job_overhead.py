"""docker_job_overhead: the one-round XGBoost training job through the stack, Docker runtime vs process runtime.

Two in-process stacks in one run, identical but for ``runtime`` (``docker`` runs ``sagestack/xgboost`` from ``make
images``, ``process`` runs ``python -m containers.xgboost``). Each job is timed from CreateTrainingJob until
DescribeTrainingJob says Completed (S3 download, container, model upload and logs included in both), median of
REPEATS after one warm-up job per stack. Key ``ratio`` (docker / process), also ``added_s`` (goal ≤ 2 s, issue 24) and
``first_added_s``: the warm-up jobs, where the Docker runtime also creates the job network that later jobs reuse
(docs/images.md#job-networks-and-relays). Each stack gets a fresh data directory (the stack is durable). For
reference, SDK local mode added about 6.5 s per job over ``docker run`` of the same image on this machine.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from benchmarks.common import emit, work_dir
from infra.config import StackSettings
from infra.control_plane.server import LocalStack

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
BUCKET = "bench-docker-job-overhead"
REPEATS = 5


def _client(stack: LocalStack, service: str) -> Any:
    return boto3.client(service, endpoint_url=stack.url, region_name="us-east-1")


def _request(name: str) -> dict[str, Any]:
    source = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}}
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {"num_round": "1", "objective": "binary:logistic", "max_depth": "2"},
        "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv", "DataSource": source}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def _job_seconds(sm: Any, name: str) -> float:
    start = time.perf_counter()
    sm.create_training_job(**_request(name))
    while True:
        described = sm.describe_training_job(TrainingJobName=name)
        if described["TrainingJobStatus"] not in ("InProgress", "Stopping"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    if described["TrainingJobStatus"] != "Completed":
        raise RuntimeError(f"benchmark job {name} failed: {described.get('FailureReason')}")
    return elapsed


def _job_times(runtime: str) -> tuple[float, float]:
    """The first job's seconds and the median of the next REPEATS."""
    base = Path(tempfile.mkdtemp(prefix=f"{runtime}-", dir=work_dir("docker_job_overhead")))
    stack = LocalStack(StackSettings(data_dir=base, port=0, runtime=runtime))
    stack.start()
    try:
        s3, sm = _client(stack, "s3"), _client(stack, "sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        rows = "".join(f"{i % 2},{i / 100:.3f},{(100 - i) / 100:.3f}\n" for i in range(100))
        s3.put_object(Bucket=BUCKET, Key="train/train.csv", Body=rows.encode())
        suffix = f"{int(time.time())}"
        times = [_job_seconds(sm, f"{runtime}-{suffix}-{index}") for index in range(REPEATS + 1)]
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)
    return times[0], statistics.median(times[1:])  # the first job warms caches (page cache, image layers, imports)


def main() -> None:
    process_first_s, process_s = _job_times("process")
    docker_first_s, docker_s = _job_times("docker")
    emit(
        "docker_job_overhead",
        f"one-round XGBoost, 100 rows, through the stack, median of {REPEATS}",
        ratio=docker_s / process_s,
        added_s=docker_s - process_s,
        docker_s=docker_s,
        process_s=process_s,
        first_added_s=docker_first_s - process_first_s,
    )


if __name__ == "__main__":
    main()
