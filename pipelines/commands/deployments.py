"""``python -m pipelines.commands.deployments``: an endpoint's deployment history, oldest first, the live config
marked: the records ``make deploy`` writes (``pipelines/library/deployment/deployment_history.py``)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError

from pipelines.library.console import configure_cli_logging
from pipelines.library.deployment.deployment_history import DeploymentHistory, HistoryError, history_table
from pipelines.library.local_stack import BootstrapError, target_settings
from pipelines.library.run_settings import SettingsError, Target

logger = logging.getLogger(__name__)


def list_deployments(args: argparse.Namespace) -> int:
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


def _sm() -> Any:
    return boto3.client("sagemaker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoint", help="default: conf/<target>.yml's endpoint_name")
    parser.add_argument("--target", choices=[t.value for t in Target], default=Target.LOCAL.value)
    parser.add_argument("--bucket", help="history bucket (default: the one make deploy uses)")
    parser.add_argument("--limit", type=int, default=20, help="show the newest N (default 20)")
    return list_deployments(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
