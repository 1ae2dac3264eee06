"""framework_job_overhead: a scikit-learn script-mode training job on 100 rows through the stack vs running the same
script directly.

Stack: CreateTrainingJob on the in-process stack with the ``sagemaker-scikit-learn`` image and the hyperparameters the
SDK's ``SKLearn`` estimator sends (``sagemaker_program``, ``sagemaker_submit_directory`` = an ``s3://`` sourcedir
tarball), then DescribeTrainingJob every 50 ms until Completed (code bundle and channel from S3, the toolkit's
``SM_*`` environment, model.tar.gz back to S3, logs to CloudWatch Logs). Direct: ``python train.py --alpha 0.5`` in a
fresh interpreter with ``SM_MODEL_DIR`` and ``SM_CHANNEL_TRAIN`` pointing at local directories. Goal: added_s <= 1.5.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import boto3

from benchmarks.common import emit, work_dir
from infra.config import StackSettings
from infra.control_plane.server import LocalStack

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
REPEATS = 5
BUCKET = "bench-framework-job-overhead"
SCRIPT = """
import argparse, os
import joblib
import numpy as np
from sklearn.linear_model import Ridge

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, default=1.0)
args = parser.parse_args()
data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",")
model = Ridge(alpha=args.alpha).fit(data[:, 1:], data[:, 0])
joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
"""


def rows_csv() -> bytes:
    return "".join(f"{i / 10:.2f},{i / 100:.3f},{(100 - i) / 100:.3f}\n" for i in range(100)).encode()


def sourcedir() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = SCRIPT.encode()
        info = tarfile.TarInfo("train.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def through_stack(url: str) -> float:
    sm = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1")
    name = f"bench-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    sm.create_training_job(
        TrainingJobName=name,
        RoleArn="arn:aws:iam::123456789012:role/Bench",
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        HyperParameters={
            "alpha": "0.5",
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": f'"s3://{BUCKET}/code/sourcedir.tar.gz"',
            "sagemaker_container_log_level": "20",
            "sagemaker_region": '"us-east-1"',
        },
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    while True:
        described = sm.describe_training_job(TrainingJobName=name)
        if described["TrainingJobStatus"] != "InProgress":
            break
        time.sleep(0.05)
    if described["TrainingJobStatus"] != "Completed":
        reason = described.get("FailureReason")
        raise RuntimeError(f"training job {name} ended {described['TrainingJobStatus']}: {reason}")
    return time.perf_counter() - start


def direct(base: Path, data_dir: Path) -> float:
    model_dir = base / uuid.uuid4().hex[:8]
    model_dir.mkdir(parents=True)
    env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SM_CHANNEL_TRAIN": str(data_dir)}
    start = time.perf_counter()
    script = base.parent / "train.py"
    subprocess.run([sys.executable, str(script), "--alpha", "0.5"], check=True, env=env, cwd=base)
    return time.perf_counter() - start


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir("framework_job_overhead")))
    data_dir = base / "data"
    data_dir.mkdir()
    (data_dir / "train.csv").write_bytes(rows_csv())
    (base / "train.py").write_text(SCRIPT)
    stack = LocalStack(StackSettings(data_dir=base / "stack", port=0))
    url = stack.start()
    try:
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="train/train.csv", Body=rows_csv())
        s3.put_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz", Body=sourcedir())
        through_stack(url)  # warm up imports and caches on both paths
        (base / "direct").mkdir()
        direct(base / "direct", data_dir)
        stack_times, direct_times = [], []
        for _ in range(REPEATS):
            stack_times.append(through_stack(url))
            direct_times.append(direct(base / "direct", data_dir))
    finally:
        stack.stop()
    stack_s, direct_s = statistics.median(stack_times), statistics.median(direct_times)
    emit(
        "framework_job_overhead",
        "median of 5; SKLearn-style CreateTrainingJob (s3 sourcedir, sagemaker_program)->Completed polled every 50 ms "
        "vs python train.py run directly on the same 100 rows",
        added_s=stack_s - direct_s,
        ratio=stack_s / direct_s,
        stack_s=stack_s,
        direct_s=direct_s,
    )


if __name__ == "__main__":
    main()
