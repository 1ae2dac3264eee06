"""``python -m pipelines.cli``: list pipelines and executions, show an execution's steps, stop or retry one (boto3);
``deployments`` lists an endpoint's deployment history (``pipelines/deployment_history.py``)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError

from pipelines.bootstrap import BootstrapError, target_settings
from pipelines.console import configure_cli_logging
from pipelines.deployment_history import DeploymentHistory, HistoryError, history_table
from pipelines.settings import SettingsError, Target
from pipelines.watch import list_steps

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


def cmd_deployments(args: argparse.Namespace) -> int:
    """The history ``make deploy`` records (in the bucket it deploys with), oldest first, the live config marked."""
    configure_cli_logging(verbose=False)  # the SDK's config chatter stays out of the table
    try:
        target = Target(args.target)
        settings = target_settings(target, say=logger.info)
        endpoint = args.endpoint or settings.conf.endpoint_name
        session = settings.sdk_session()
        bucket = args.bucket or settings.bucket or session.default_bucket()
        history = DeploymentHistory(session.boto_session.client("s3"), bucket)
        records = history.records(endpoint)
    except (BootstrapError, SettingsError, HistoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"no deployments of {endpoint} recorded in {history.location(endpoint)}")
        return 0
    print("\n".join(history_table(records[-args.limit :], _live_config(endpoint))))
    return 0


def _live_config(endpoint: str) -> str | None:
    try:
        return str(_sm().describe_endpoint(EndpointName=endpoint)["EndpointConfigName"])
    except ClientError:
        return None


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
    deployments = commands.add_parser("deployments", help="an endpoint's deployment history, oldest first")
    deployments.add_argument("--endpoint", help="default: conf/<target>.yml's endpoint_name")
    deployments.add_argument("--target", choices=[t.value for t in Target], default=Target.LOCAL.value)
    deployments.add_argument("--bucket", help="history bucket (default: the one make deploy uses)")
    deployments.add_argument("--limit", type=int, default=20, help="show the newest N (default 20)")
    deployments.set_defaults(run=cmd_deployments)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
