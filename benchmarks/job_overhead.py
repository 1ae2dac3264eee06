"""job_overhead: a one-round XGBoost training job through the stack vs the same container through the runtime.

Stack: CreateTrainingJob on the in-process stack, then DescribeTrainingJob every 50 ms until Completed (inputs from
S3, model.tar.gz back to S3, logs to CloudWatch Logs). Direct: ``ProcessRuntime.start_training(...).wait()`` on the
same 100-row CSV. Goal: added_s <= 1.5. SageMaker itself spends minutes provisioning an instance per job.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path

import boto3

from benchmarks.common import emit, work_dir
from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from infra.runtime.api import ChannelSpec, TrainingOutcome, TrainingSpec
from infra.runtime.images import resolve_image
from infra.runtime.process import ProcessRuntime

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
HYPERPARAMETERS = {"num_round": "1", "objective": "binary:logistic", "max_depth": "2"}
REPEATS = 5
BUCKET = "bench-job-overhead"


def rows_csv() -> bytes:
    return "".join(f"{i % 2},{i / 100:.3f},{(100 - i) / 100:.3f}\n" for i in range(100)).encode()


def through_stack(url: str, keep_alive_seconds: int = 0) -> float:
    sm = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1")
    name = f"bench-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    sm.create_training_job(
        TrainingJobName=name,
        RoleArn="arn:aws:iam::123456789012:role/Bench",
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        HyperParameters=HYPERPARAMETERS,
        InputDataConfig=[
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={
            "InstanceType": "ml.m5.large",
            "InstanceCount": 1,
            "VolumeSizeInGB": 1,
            **({"KeepAlivePeriodInSeconds": keep_alive_seconds} if keep_alive_seconds else {}),
        },
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    while True:
        status = sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
        if status != "InProgress":
            break
        time.sleep(0.05)
    if status != "Completed":
        raise RuntimeError(f"training job {name} ended {status}")
    return time.perf_counter() - start


def direct(runtime: ProcessRuntime, data_dir: Path, base: Path) -> float:
    spec = TrainingSpec(
        job_name=f"direct-{uuid.uuid4().hex[:8]}",
        image=resolve_image(IMAGE),
        work_dir=base / uuid.uuid4().hex[:8],
        hyperparameters=HYPERPARAMETERS,
        channels={"algo-1": [ChannelSpec(name="train", source_dir=data_dir, content_type="text/csv")]},
    )
    start = time.perf_counter()
    result = runtime.start_training(spec).wait()
    if result.outcome is not TrainingOutcome.COMPLETED:
        raise RuntimeError(f"direct run ended {result.outcome.value}: {result.failure_reason}")
    return time.perf_counter() - start


def upload_training_data(url: str) -> None:
    """The job's training channel in the stack's S3: ``s3://BUCKET/train/train.csv``."""
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="train/train.csv", Body=rows_csv())


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir("job_overhead")))
    data_dir = base / "data"
    data_dir.mkdir()
    (data_dir / "train.csv").write_bytes(rows_csv())
    stack = LocalStack(StackSettings(data_dir=base / "stack", port=0))
    url = stack.start()
    runtime = ProcessRuntime(base / "runtime")
    try:
        upload_training_data(url)
        through_stack(url)  # warm up imports and caches on both paths
        direct(runtime, data_dir, base / "direct")
        stack_times, direct_times = [], []
        for _ in range(REPEATS):
            stack_times.append(through_stack(url))
            direct_times.append(direct(runtime, data_dir, base / "direct"))
    finally:
        runtime.shutdown()
        stack.stop()
    stack_s, direct_s = statistics.median(stack_times), statistics.median(direct_times)
    emit(
        "job_overhead",
        "median of 5; CreateTrainingJob->Completed polled every 50 ms vs ProcessRuntime.start_training().wait(); "
        "SageMaker users wait minutes for instance provisioning alone",
        added_s=stack_s - direct_s,
        stack_s=stack_s,
        direct_s=direct_s,
    )


if __name__ == "__main__":
    main()
