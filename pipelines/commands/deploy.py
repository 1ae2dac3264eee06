"""``python -m pipelines.commands.deploy``: deploy a model package of the ``credit-risk`` group to the endpoint.

To the ``credit-risk`` endpoint with data capture on: blue/green, health-checked, rolled back when unhealthy, recorded,
safe to re-run (the run itself: ``pipelines/library/deployment/rollout.py``).

The package is ``--package`` (an ARN or a version number) or the newest ``Approved`` one; when the group has no
approved package, the newest package is approved first (and the command says so). The same package already live
with the same settings and healthy: nothing to do (exit 0). Otherwise a new model and endpoint config (data capture
of every request and response under ``s3://<bucket>/<endpoint>/data-capture``, the input of ``make
monitor``), then ``CreateEndpoint`` or ``UpdateEndpoint`` (blue/green: a failed update leaves the old config
serving), a wait for ``InService``, and the health check (``pipelines/library/deployment/deployment_health.py``).
Unhealthy: the endpoint is updated back to the previous config and the command exits 1 with the reason. Every attempt
is recorded (``pipelines/library/deployment/deployment_history.py``; list them with ``python -m
pipelines.commands.deployments``).

On ``--target local`` the stack at ``$AWS_ENDPOINT_URL`` is used when it answers, else it is started in the
background (``pipelines/library/local_stack.py``); everything else is boto3 and the SageMaker SDK.
"""

from __future__ import annotations

import argparse
import logging
import sys

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.library.console import command_parser, configure_cli_logging, say
from pipelines.library.deployment.blue_green import DeployError, EndpointSpec, Waiting, resolve_package
from pipelines.library.deployment.deployment_health import HealthCheck, HealthDataError, health_data_uri, read_sample
from pipelines.library.deployment.deployment_history import DeploymentHistory, HistoryError, Outcome
from pipelines.library.deployment.rollout import Deployment, deploy
from pipelines.library.local_stack import BootstrapError, target_settings
from pipelines.library.run_settings import RunSettings, SettingsError, Target

logger = logging.getLogger(__name__)

PIPELINE = "credit-risk"  # the pipeline whose Features step wrote the test split the health check scores


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser(__doc__)
    parser.add_argument("--group", help="model package group (default: conf/<target>.yml's credit_risk group)")
    parser.add_argument("--package", help="model package ARN or version number (default: newest Approved)")
    parser.add_argument("--endpoint", help="endpoint name (default: conf/<target>.yml's endpoint_name)")
    parser.add_argument("--instance-type", help="default: conf/<target>.yml's endpoint instance type")
    parser.add_argument("--sampling", type=int, default=100, help="data capture sampling percentage")
    parser.add_argument(
        "--capture-uri", help="data capture destination (default: s3://<bucket>/<endpoint>/data-capture)"
    )
    defaults = HealthCheck()
    parser.add_argument(
        "--health-rows", type=int, default=defaults.rows, help="test rows the health check scores (0: no check)"
    )
    parser.add_argument(
        "--health-data", help=f"S3 prefix of a labelled CSV split (default: the {PIPELINE} pipeline's test split)"
    )
    parser.add_argument(
        "--health-min-auc", type=float, default=defaults.min_auc, help="lowest AUC on those rows that counts healthy"
    )
    parser.add_argument("--timeout", type=float, default=Waiting().timeout_seconds, help="seconds to wait per switch")
    return parser.parse_args(argv)


def endpoint_spec(args: argparse.Namespace, settings: RunSettings, bucket: str) -> EndpointSpec:
    """The command line over conf/<target>.yml (endpoint name, endpoint instance type)."""
    endpoint = args.endpoint or settings.conf.endpoint_name
    return EndpointSpec(
        endpoint=endpoint,
        instance_type=args.instance_type or settings.conf.instance_types["endpoint"],
        sampling=args.sampling,
        capture_uri=args.capture_uri or f"s3://{bucket}/{endpoint}/data-capture",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_cli_logging(args.verbose)
    target = Target(args.target)
    try:
        settings = target_settings(target, say)
        session = settings.sdk_session()
        bucket = session.default_bucket()
        s3 = session.boto_session.client("s3")
        check = HealthCheck(rows=args.health_rows, min_auc=args.health_min_auc)
        data = args.health_data or health_data_uri(bucket, PIPELINE)
        run = Deployment(
            session=session,
            role=settings.role,
            history=DeploymentHistory(s3, bucket),
            check=check,
            sample=read_sample(s3, data, check.rows) if check.rows > 0 else None,
            waiting=Waiting(timeout_seconds=args.timeout),
            say=say,
        )
        spec = endpoint_spec(args, settings, bucket)
        package = resolve_package(
            run.sm, args.group or settings.conf.model_package_groups["credit_risk"], args.package, say
        )
        say(f"==> model package {package.arn} ({package.status})")
        record = deploy(run, package, spec)
    except (BootstrapError, SettingsError, BotoCoreError) as exc:  # no stack, no settings, no credentials
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DeployError, HealthDataError, HistoryError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if record is None:
        return 0
    say(f"==> recorded in {run.history.location(spec.endpoint)} ({record.outcome.value})")
    if record.outcome is not Outcome.SUCCEEDED:
        print(f"error: deployment {record.outcome.value}: {record.reason}", file=sys.stderr)
        return 1
    say(f"==> endpoint {spec.endpoint} InService with {record.endpoint_config}: {record.reason}")
    say(f"    data capture: {spec.sampling}% of requests and responses -> {spec.capture_uri}")
    say("    next: make monitor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
