"""console_page_time: server time of the console's pipelines, jobs and endpoints pages with 1,000 training jobs and
100 pipeline executions in the stack (goal: p95 <= 300 ms).

On the in-process stack: 1,000 training jobs are created through boto3 (CreateTrainingJob, validated as always) with
the training launcher swapped for one that completes each job at once, so no container runs; 100 executions of a
one-step pipeline (a Condition step: no job) are started through boto3 and run to the end; 3 XGBoost endpoints are
deployed. Each page is then fetched 40 times over one kept-alive connection from 127.0.0.1 (the time includes the
HTTP round trip, so it bounds the server time from above). The anchor, measured in the same run, is the List call
each list page makes, sent with boto3 through the same edge: ``ratio`` is the slowest page's p95 over the anchor's.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import requests

from benchmarks.common import emit, percentile
from benchmarks.invoke_overhead import IMAGE, model_archive
from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from infra.control_plane.training.training_jobs import SecondaryStatus, TrainingJob, TrainingJobStatus

TRAINING_JOBS = 1000
EXECUTIONS = 100
ENDPOINTS = 3
REPEATS = 40
ROLE = "arn:aws:iam::123456789012:role/Bench"
BUCKET = "bench-console-page-time"


class _Instant:
    """A training launcher that completes the job at once (the console reads jobs; none needs to run)."""

    def launch(self, job: TrainingJob) -> None:
        job.advance(SecondaryStatus.COMPLETED, TrainingJobStatus.COMPLETED)


def _client(url: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b"
    )


def training_jobs(stack: LocalStack, sm: Any) -> None:
    jobs = stack.backend().training_jobs
    real, jobs._launcher = jobs._launcher, _Instant()  # the benchmark's own cheap launcher
    try:
        for index in range(TRAINING_JOBS):
            sm.create_training_job(
                TrainingJobName=f"bench-job-{index:04d}",
                RoleArn=ROLE,
                AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
                OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
                ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
                StoppingCondition={"MaxRuntimeInSeconds": 60},
                HyperParameters={"num_round": str(index % 50 + 1)},
            )
    finally:
        jobs._launcher = real


def executions(sm: Any) -> str:
    check = {
        "Name": "Check",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 1}],
            "IfSteps": [],
            "ElseSteps": [],
        },
    }
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": [check]}
    sm.create_pipeline(PipelineName="bench-console", PipelineDefinition=json.dumps(definition), RoleArn=ROLE)
    arns = [
        sm.start_pipeline_execution(PipelineName="bench-console")["PipelineExecutionArn"] for _ in range(EXECUTIONS)
    ]
    for arn in arns:
        while sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing":
            time.sleep(0.05)
    return str(arns[-1]).rsplit("/", 1)[-1]


def endpoints(url: str, sm: Any, base: Path) -> None:
    archive, _ = model_archive(base)
    _client(url, "s3").put_object(Bucket=BUCKET, Key="model.tar.gz", Body=archive.read_bytes())
    container = {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"}
    sm.create_model(ModelName="bench-console", ExecutionRoleArn=ROLE, PrimaryContainer=container)
    variant = {"VariantName": "AllTraffic", "ModelName": "bench-console", "InitialInstanceCount": 1}
    variant["InstanceType"] = "ml.m5.large"
    sm.create_endpoint_config(EndpointConfigName="bench-console", ProductionVariants=[variant])
    names = [f"bench-console-{i}" for i in range(ENDPOINTS)]
    for name in names:
        sm.create_endpoint(EndpointName=name, EndpointConfigName="bench-console")
    for name in names:
        while sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating":
            time.sleep(0.1)


def timed(call: Callable[[], Any]) -> float:
    """p95 milliseconds of ``REPEATS`` calls (after one warm-up)."""
    call()
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return percentile(timings, 95)


def page(session: requests.Session, url: str, shows: str) -> Callable[[], Any]:
    def get() -> None:
        answer = session.get(url)
        if answer.status_code != 200 or shows not in answer.text:
            raise RuntimeError(f"{url} answered {answer.status_code} without {shows!r}")

    return get


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="console_page_time-") as scratch:
        stack = LocalStack(StackSettings(data_dir=Path(scratch) / "stack", port=0))
        url = stack.start()
        try:
            sm = _client(url, "sagemaker")
            _client(url, "s3").create_bucket(Bucket=BUCKET)
            training_jobs(stack, sm)
            execution = executions(sm)
            endpoints(url, sm, Path(scratch))
            session, console = requests.Session(), f"{url}/console"
            second = sm.list_training_jobs(MaxResults=50, SortBy="CreationTime", SortOrder="Descending")["NextToken"]
            figures = {
                "pipelines_p95_ms": timed(page(session, f"{console}/pipelines", "bench-console")),
                "executions_p95_ms": timed(page(session, f"{console}/pipelines/bench-console", "next-page")),
                "execution_p95_ms": timed(
                    page(session, f"{console}/pipelines/bench-console/executions/{execution}", "Succeeded")
                ),
                "jobs_p95_ms": timed(page(session, f"{console}/jobs/training", "bench-job-0999")),
                "jobs_page2_p95_ms": timed(page(session, f"{console}/jobs/training?page={second}", "bench-job-0949")),
                "job_p95_ms": timed(page(session, f"{console}/jobs/training/bench-job-0500", "Completed")),
                "endpoints_p95_ms": timed(page(session, f"{console}/endpoints", "bench-console-2")),
                "endpoint_p95_ms": timed(page(session, f"{console}/endpoints/bench-console-0", "AllTraffic")),
            }
            anchor = timed(lambda: sm.list_training_jobs(MaxResults=50, SortBy="CreationTime", SortOrder="Descending"))
            executions_anchor = timed(lambda: sm.list_pipeline_executions(PipelineName="bench-console", MaxResults=50))
        finally:
            stack.stop()
    slowest = max(figures.values())
    emit(
        "console_page_time",
        f"{TRAINING_JOBS} training jobs, {EXECUTIONS} executions, {ENDPOINTS} endpoints; {REPEATS} GETs per page over"
        " one connection; anchor: ListTrainingJobs (50) through the same edge with boto3",
        p95_ms=slowest,
        **figures,
        anchor_list_p95_ms=anchor,
        anchor_executions_p95_ms=executions_anchor,
        ratio=slowest / anchor,
    )


if __name__ == "__main__":
    main()
