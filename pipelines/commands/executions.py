"""``python -m pipelines.commands.executions``: list pipelines and executions, show an execution's steps, stop or
retry one (boto3). An endpoint's deployment history is ``python -m pipelines.commands.deployments``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import boto3

from pipelines.library.execution_watch import list_steps

logger = logging.getLogger(__name__)


def _sm() -> Any:
    return boto3.client("sagemaker")


def cmd_list(args: argparse.Namespace) -> int:
    for item in _sm().list_pipelines(MaxResults=100)["PipelineSummaries"]:
        print(f"{item['PipelineName']:<40} {item.get('LastExecutionTime', '-')}")
    return 0


def cmd_executions(args: argparse.Namespace) -> int:
    listed = _sm().list_pipeline_executions(PipelineName=args.pipeline, MaxResults=100)
    for item in listed["PipelineExecutionSummaries"]:
        reason = item.get("PipelineExecutionFailureReason", "")
        print(f"{item['PipelineExecutionArn']}  {item['PipelineExecutionStatus']:<10} {item['StartTime']}  {reason}")
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    for step in list_steps(_sm(), args.execution_arn):
        cached = " (cache hit)" if step.get("CacheHitResult") else ""
        meta = next(iter((step.get("Metadata") or {}).items()), ("", ""))
        status, reason = step["StepStatus"] + cached, step.get("FailureReason", "")
        print(f"{step['StepName']:<34} {status:<22} {meta[0]} {meta[1]} {reason}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    print(_sm().stop_pipeline_execution(PipelineExecutionArn=args.execution_arn)["PipelineExecutionArn"])
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    print(_sm().retry_pipeline_execution(PipelineExecutionArn=args.execution_arn)["PipelineExecutionArn"])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list").set_defaults(run=cmd_list)
    executions = commands.add_parser("executions")
    executions.add_argument("pipeline")
    executions.set_defaults(run=cmd_executions)
    for name, handler in (("steps", cmd_steps), ("stop", cmd_stop), ("retry", cmd_retry)):
        sub = commands.add_parser(name)
        sub.add_argument("execution_arn")
        sub.set_defaults(run=handler)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
