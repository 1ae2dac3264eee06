"""The stack with the Docker runtime, through boto3: a two-host distributed XGBoost job, a processing container that
reads S3 through the stack on 127.0.0.1 (the gateway relay), and the engine stopping mid-job.

The stack's runtime talks to the engine through :class:`EngineProxy`, so a test can "stop the engine" without
stopping the machine's real engine.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from infra.runtime.docker import DockerRuntime
from infra.runtime.docker.docker_cli import DockerCli
from tests.docker.conftest import binary_csv, eventually, require_image
from tests.docker.engine_proxy import EngineProxy

XGBOOST_URI = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SKLEARN_URI = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
BUCKET = "sagestack-docker-tests"

READ_THROUGH_STACK = b"""
import json, os, sys
from pathlib import Path
import boto3

bucket, key = sys.argv[1:3]
body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
jobs = boto3.client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"]
out = Path("/opt/ml/processing/output/result")
out.mkdir(parents=True, exist_ok=True)
(out / "read.json").write_text(json.dumps({
    "body": body.decode(), "endpoint": os.environ["AWS_ENDPOINT_URL"], "jobs": len(jobs),
}))
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProxy]:
    proxy = EngineProxy(tmp_path_factory.mktemp("engine") / "docker.sock")
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def docker_stack(tmp_path_factory: pytest.TempPathFactory, engine: EngineProxy) -> Iterator[LocalStack]:
    require_image("sagestack/xgboost:latest")
    require_image("sagestack/processing:latest")
    data_dir = tmp_path_factory.mktemp("docker-stack")
    runtime = DockerRuntime(data_dir / "runtime", docker=DockerCli(host=engine.docker_host), stop_grace_seconds=5.0)
    stack = LocalStack(StackSettings(data_dir=data_dir, port=0, runtime="docker"), runtime=runtime)
    stack.start()
    client("s3", stack).create_bucket(Bucket=BUCKET)
    yield stack
    stack.stop()


def client(service: str, stack: LocalStack) -> Any:
    return boto3.client(
        service, endpoint_url=stack.url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )


def wait_for(describe: Any, key: str, seconds: float = 300.0) -> dict[str, Any]:
    """Poll a Describe* call until the job leaves InProgress/Stopping (or ``seconds`` pass: the caller asserts)."""
    deadline = time.monotonic() + seconds
    while True:
        described: dict[str, Any] = describe()
        if described[key] not in ("InProgress", "Stopping") or time.monotonic() > deadline:
            return described
        time.sleep(0.2)


def job_containers(job: str, *status: str) -> list[str]:
    argv = ["docker", "ps", "-aq", "--filter", f"label=org.sagestack.job={job}"]
    argv += [f"--filter=status={state}" for state in status]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


def training_request(name: str, hosts: int, **algorithm: object) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": XGBOOST_URI, "TrainingInputMode": "File", **algorithm},
        "HyperParameters": {"objective": "binary:logistic", "num_round": "3", "max_depth": "3"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{BUCKET}/dist/train/",
                        "S3DataDistributionType": "ShardedByS3Key",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": hosts, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def test_a_two_host_distributed_xgboost_job_trains_one_model(docker_stack: LocalStack, tmp_path: Path) -> None:
    s3, sm, logs = (client(service, docker_stack) for service in ("s3", "sagemaker", "logs"))
    for index in (1, 2):
        data = binary_csv(tmp_path / f"part-{index}.csv", seed=index)
        s3.upload_file(str(data), BUCKET, f"dist/train/part-{index}.csv")

    sm.create_training_job(**training_request("dist-xgb", 2))
    described = wait_for(lambda: sm.describe_training_job(TrainingJobName="dist-xgb"), "TrainingJobStatus")

    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    key = described["ModelArtifacts"]["S3ModelArtifacts"].removeprefix(f"s3://{BUCKET}/")
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="dist-xgb/")
    assert sorted(stream["logStreamName"].split("/")[1][:6] for stream in streams["logStreams"]) == [
        "algo-1",
        "algo-2",
    ]
    assert eventually(lambda: job_containers("dist-xgb") == [])


def test_a_processing_container_reads_s3_through_the_stack_on_loopback(docker_stack: LocalStack) -> None:
    s3, sm = client("s3", docker_stack), client("sagemaker", docker_stack)
    s3.put_object(Bucket=BUCKET, Key="relay/code/read.py", Body=READ_THROUGH_STACK)
    s3.put_object(Bucket=BUCKET, Key="relay/secret.txt", Body=b"only through the stack")
    code_input = {
        "InputName": "code",
        "S3Input": {
            "S3Uri": f"s3://{BUCKET}/relay/code",
            "LocalPath": "/opt/ml/processing/input/code",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }
    output = {
        "OutputName": "result",
        "S3Output": {
            "S3Uri": f"s3://{BUCKET}/relay/out",
            "LocalPath": "/opt/ml/processing/output/result",
            "S3UploadMode": "EndOfJob",
        },
    }
    sm.create_processing_job(
        ProcessingJobName="relay-read",
        RoleArn=ROLE,
        AppSpecification={
            "ImageUri": SKLEARN_URI,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/read.py"],
            "ContainerArguments": [BUCKET, "relay/secret.txt"],
        },
        ProcessingInputs=[code_input],
        ProcessingOutputConfig={"Outputs": [output]},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
    )
    described = wait_for(lambda: sm.describe_processing_job(ProcessingJobName="relay-read"), "ProcessingJobStatus")

    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    read = json.loads(s3.get_object(Bucket=BUCKET, Key="relay/out/read.json")["Body"].read())
    assert read["body"] == "only through the stack"
    assert read["jobs"] >= 1
    assert not read["endpoint"].startswith("http://127.0.0.1")  # the container saw the relay, not loopback
    assert docker_stack.settings.host == "127.0.0.1"  # and the stack itself still listens on loopback only


def test_the_engine_stopping_mid_job_fails_it_and_its_containers_go_when_it_is_back(
    docker_stack: LocalStack, engine: EngineProxy
) -> None:
    sm = client("sagemaker", docker_stack)
    sleeper = ["python", "-c", "import time; print('up', flush=True); time.sleep(600)"]
    sm.create_training_job(**training_request("engine-stop", 1, ContainerEntrypoint=sleeper))
    assert eventually(lambda: job_containers("engine-stop", "running"))

    engine.stop()
    try:
        described = wait_for(lambda: sm.describe_training_job(TrainingJobName="engine-stop"), "TrainingJobStatus")
    finally:
        engine.start()

    assert described["TrainingJobStatus"] == "Failed"
    assert "Docker engine stopped" in described["FailureReason"]
    assert eventually(lambda: not job_containers("engine-stop"))  # removed once the engine answers again
