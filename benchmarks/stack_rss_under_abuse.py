"""stack_rss_under_abuse: the stack's peak RSS across the abusive requests of issue 17 (goal: under 512 MB).

The stack runs as its own process (``python -m infra.cli serve`` on a free port). Its idle RSS, read after start-up,
is the anchor. Then it receives: a training job with 2^31 instances, an endpoint config with 2^63 instances, a gzip
bomb channel (1 MiB expanding to 1.1 GiB, in File mode), a 512 MiB InvokeEndpoint body announced by Content-Length,
a chunked body, 50 stalled connections, a body nested 100,000 deep, clashing keys, a NUL in a LocalPath and a reused
ClientRequestToken. ``peak_mb`` is the kernel's high-water mark of the stack's RSS (``VmHWM``) once all are answered.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from benchmarks.common import emit, work_dir

ROLE = "arn:aws:iam::123456789012:role/Bench"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
BUCKET = "bench-abuse"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found for pid {pid}")


def start_stack(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "SAGESTACK_DATA_DIR": str(data_dir), "SAGESTACK_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "infra.cli", "serve"], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the stack did not start")


def expect_error(call: object, *args: object, **kwargs: object) -> str:
    try:
        call(*args, **kwargs)  # type: ignore[operator]
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "none"


def raw_request(port: int, head: bytes, body: bytes = b"") -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        try:
            sock.recv(65536)
        except OSError:
            pass


def wait_failed(sm: object, name: str) -> str:
    for _ in range(1200):
        described = sm.describe_training_job(TrainingJobName=name)  # type: ignore[attr-defined]
        if described["TrainingJobStatus"] in ("Failed", "Completed", "Stopped"):
            return str(described["TrainingJobStatus"])
        time.sleep(0.25)
    return "InProgress"


def abuse(url: str) -> dict[str, str]:
    kwargs = {"endpoint_url": url, "region_name": "us-east-1"}
    sm, s3 = boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs)
    port = int(url.rsplit(":", 1)[1])
    s3.create_bucket(Bucket=BUCKET)
    answers: dict[str, str] = {}
    job = {
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2147483648, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    answers["instances_2e31"] = expect_error(sm.create_training_job, TrainingJobName="huge", **job)
    sm.create_model(ModelName="m", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    variant = {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2**63}
    answers["endpoint_2e63"] = expect_error(
        sm.create_endpoint_config, EndpointConfigName="c", ProductionVariants=[variant]
    )

    s3.put_object(Bucket=BUCKET, Key="bomb/x.csv.gz", Body=gzip.compress(bytes(1 << 20), 9) * 1100)
    channel = {"ChannelName": "train", "CompressionType": "Gzip"}
    channel["DataSource"] = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/bomb/"}}
    job["ResourceConfig"] = {**job["ResourceConfig"], "InstanceCount": 1}  # type: ignore[dict-item]
    sm.create_training_job(TrainingJobName="bomb", InputDataConfig=[channel], **job)
    answers["gzip_bomb"] = wait_failed(sm, "bomb")

    head = b"POST /endpoints/none/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
    raw_request(port, head + f"Content-Length: {512 << 20}\r\n\r\n".encode(), b"1" * (1 << 20))
    raw_request(port, head + b"Transfer-Encoding: chunked\r\n\r\n", b"3\r\n1,2\r\n0\r\n\r\n")
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    for sock in stalled:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n")
    nested = ("[" * 100_000 + "]" * 100_000).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(
        "POST", "/", nested, {"X-Amz-Target": "SageMaker.ListModels", "Content-Type": "application/x-amz-json-1.1"}
    )
    answers["nested"] = str(connection.getresponse().status)
    for sock in stalled:
        sock.close()

    token = uuid.uuid4().hex
    definition = {"Version": "2020-12-01", "Steps": [{"Name": "f", "Type": "Fail", "Arguments": {}}]}
    sm.create_pipeline(
        PipelineName="p1", PipelineDefinition=json.dumps(definition), RoleArn=ROLE, ClientRequestToken=token
    )
    definition["Steps"][0]["Name"] = "g"  # type: ignore[index]
    answers["token_reuse"] = expect_error(
        sm.create_pipeline,
        PipelineName="p2",
        PipelineDefinition=json.dumps(definition),
        RoleArn=ROLE,
        ClientRequestToken=token,
    )
    return answers


def main() -> None:
    process, url = start_stack(work_dir("stack_rss_under_abuse") / f"stack-{uuid.uuid4().hex[:6]}")
    try:
        time.sleep(1.0)
        idle = memory_mb(process.pid, "VmRSS")
        answers = abuse(url)
        peak = memory_mb(process.pid, "VmHWM")
    finally:
        process.terminate()
        process.wait(timeout=60)
    summary = ",".join(f"{key}:{value}" for key, value in answers.items())
    emit(
        "stack_rss_under_abuse",
        f"goal peak_mb <= 512; answers {summary}",
        peak_mb=peak,
        idle_mb=idle,
        ratio=peak / idle,
    )


if __name__ == "__main__":
    main()
