"""tuning_overhead: a tuning job of 10 one-round XGBoost jobs, 2 in parallel, vs the same 10 jobs back to back.

Both through the in-process stack. Tuning: CreateHyperParameterTuningJob (Random, MaxNumberOfTrainingJobs 10,
MaxParallelTrainingJobs 2), DescribeHyperParameterTuningJob every 50 ms until Completed. Back to back: the 10
training jobs the tuning job launched, re-created with the same hyperparameters through CreateTrainingJob one after
the other, each polled every 50 ms until Completed. ``ratio`` = tuning wall time / back-to-back wall time; goal <= 0.65.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3

from benchmarks.common import emit, work_dir
from infra.config import StackSettings
from infra.control_plane.server import LocalStack

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/Bench"
BUCKET = "bench-tuning-overhead"
JOBS = 10
PARALLEL = 2


def rows_csv() -> bytes:
    return "".join(f"{i % 2},{i / 100:.3f},{(100 - i) / 100:.3f}\n" for i in range(100)).encode()


def job_parts() -> dict[str, Any]:
    channel = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train"}}
    return {
        "RoleArn": ROLE,
        "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv", "DataSource": channel}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def tuning(sm: Any) -> tuple[float, list[dict[str, str]]]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    definition = {
        **job_parts(),
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "StaticHyperParameters": {"num_round": "1", "objective": "binary:logistic"},
    }
    start = time.perf_counter()
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:rmse"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": JOBS, "MaxParallelTrainingJobs": PARALLEL},
            "ParameterRanges": {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "6"}]},
        },
        TrainingJobDefinition=definition,
    )
    while True:
        status = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if status["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    if status["TrainingJobStatusCounters"]["Completed"] != JOBS:
        raise RuntimeError(f"tuning job {name} ended {status['HyperParameterTuningJobStatus']}: {status}")
    summaries = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name, MaxResults=100)
    names = [s["TrainingJobName"] for s in summaries["TrainingJobSummaries"]]
    return elapsed, [sm.describe_training_job(TrainingJobName=n)["HyperParameters"] for n in names]


def back_to_back(sm: Any, hyperparameters: list[dict[str, str]]) -> float:
    start = time.perf_counter()
    for values in hyperparameters:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        sm.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            HyperParameters=values,
            **job_parts(),
        )
        while (status := sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]) == "InProgress":
            time.sleep(0.05)
        if status != "Completed":
            raise RuntimeError(f"training job {name} ended {status}")
    return time.perf_counter() - start


def client(url: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
    )


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir("tuning_overhead")))
    stack = LocalStack(StackSettings(data_dir=base / "stack", port=0))
    url = stack.start()
    try:
        s3 = client(url, "s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="train/train.csv", Body=rows_csv())
        sm = client(url, "sagemaker")
        back_to_back(sm, [{"num_round": "1", "objective": "binary:logistic"}])  # warm up imports and caches
        tuning_s, hyperparameters = tuning(sm)
        sequential_s = back_to_back(sm, hyperparameters)
    finally:
        stack.stop()
    emit(
        "tuning_overhead",
        f"{JOBS} one-round XGBoost jobs: tuning job with {PARALLEL} in parallel vs the same jobs back to back, "
        "both through the in-process stack, polled every 50 ms",
        ratio=tuning_s / sequential_s,
        tuning_s=tuning_s,
        back_to_back_s=sequential_s,
    )


if __name__ == "__main__":
    main()
