"""pipeline_cache: the credit-risk pipeline run twice with caching on (``python -m pipelines.commands.run_pipeline``
in-process).

ratio = second execution's duration / first's (CreationTime -> LastModifiedTime of the execution). Cached: features,
training/tuning, evaluation and the transform (the Model step reuses the first run's model when its resolved
definition is unchanged, so the transform's cache key, which holds the model name, is equal); registration runs
again. Goal: ratio <= 0.2.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid

import boto3

from benchmarks.common import emit, work_dir
from infra.cli import env_lines, write_sdk_config
from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from pipelines.commands.run_pipeline import main as run_pipeline


def execution_seconds(sm: object, name: str) -> list[float]:
    summaries = sm.list_pipeline_executions(PipelineName=name, SortOrder="Ascending")["PipelineExecutionSummaries"]  # type: ignore[attr-defined]
    out = []
    for item in summaries:
        described = sm.describe_pipeline_execution(PipelineExecutionArn=item["PipelineExecutionArn"])  # type: ignore[attr-defined]
        out.append((described["LastModifiedTime"] - described["CreationTime"]).total_seconds())
    return out


def main() -> None:
    root = work_dir("pipeline_cache")
    stack = LocalStack(StackSettings(data_dir=root, port=0))
    stack.start()
    try:
        settings = StackSettings(data_dir=root, port=stack.settings.port if stack.settings.port else 0)
        settings = StackSettings(data_dir=root, port=int(stack.url.rsplit(":", 1)[1]))
        for line in env_lines(settings, write_sdk_config(settings, "sagemaker-us-east-1-123456789012")):
            key, _, value = line.removeprefix("export ").partition("=")
            os.environ[key] = value
        boto3.client("s3").create_bucket(Bucket="sagemaker-us-east-1-123456789012")
        name = f"bench-credit-{uuid.uuid4().hex[:6]}"
        with contextlib.redirect_stdout(io.StringIO()):
            codes = [run_pipeline(["--name", name, "--reports", str(root / "reports")]) for _ in range(2)]
        first, second = execution_seconds(boto3.client("sagemaker"), name)
    finally:
        stack.stop()
    emit(
        "pipeline_cache",
        f"credit-risk pipeline twice, caching on; exit codes {codes}",
        ratio=round(second / first, 3),
        first_s=round(first, 1),
        second_s=round(second, 1),
    )


if __name__ == "__main__":
    main()
