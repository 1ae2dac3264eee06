"""pipeline_step_overhead: 5 trivial processing steps as a linear pipeline vs the same 5 jobs started back to back.

Both run on one in-process stack; the direct side polls DescribeProcessingJob every 50 ms. Reports the time the
pipeline adds per step (scheduling, argument resolution, polling). Goal: added_s_per_step <= 0.5.
"""

from __future__ import annotations

import json
import time
import uuid

import boto3

from benchmarks.common import emit, work_dir
from infra.config import StackSettings
from infra.control_plane.server import LocalStack

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/Bench"
BUCKET = "bench-pipeline-overhead"
STEPS = 5
KEYS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


def job_request() -> dict[str, object]:
    return {
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "/opt/ml/processing/code/s.py"]},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/code/s.py",
                    "LocalPath": "/opt/ml/processing/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
    }


def direct(sm: object) -> float:
    start = time.perf_counter()
    for _ in range(STEPS):
        name = f"direct-{uuid.uuid4().hex[:8]}"
        sm.create_processing_job(ProcessingJobName=name, **job_request())  # type: ignore[attr-defined]
        while sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "InProgress":  # type: ignore[attr-defined]
            time.sleep(0.05)
    return time.perf_counter() - start


def pipeline(sm: object) -> float:
    steps = [
        {
            "Name": f"S{i}",
            "Type": "Processing",
            "Arguments": job_request(),
            **({"DependsOn": [f"S{i - 1}"]} if i else {}),
        }
        for i in range(STEPS)
    ]
    name = f"bench-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"Version": "2020-12-01", "Steps": steps})
    sm.create_pipeline(PipelineName=name, PipelineDefinition=body, RoleArn=ROLE)  # type: ignore[attr-defined]
    start = time.perf_counter()
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]  # type: ignore[attr-defined]
    while sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing":  # type: ignore[attr-defined]
        time.sleep(0.05)
    return time.perf_counter() - start


def main() -> None:
    stack = LocalStack(StackSettings(data_dir=work_dir("pipeline_step_overhead"), port=0))
    url = stack.start()
    try:
        sm = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", **KEYS)
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **KEYS)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="code/s.py", Body=b"print('ok')\n")
        direct(sm)  # warm-up
        direct_s, pipeline_s = direct(sm), pipeline(sm)
    finally:
        stack.stop()
    emit(
        "pipeline_step_overhead",
        f"{STEPS} trivial processing steps, linear pipeline vs back-to-back jobs",
        added_s_per_step=round((pipeline_s - direct_s) / STEPS, 3),
        pipeline_s=round(pipeline_s, 2),
        direct_s=round(direct_s, 2),
    )


if __name__ == "__main__":
    main()
