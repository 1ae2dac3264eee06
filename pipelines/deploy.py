"""``python -m pipelines.deploy``: deploy a model package of the ``credit-risk`` group to the ``credit-risk`` endpoint
with data capture on: blue/green, health-checked, rolled back when unhealthy, recorded, safe to re-run.

The package is ``--package`` (an ARN or a version number) or the newest ``Approved`` one; when the group has no
approved package, the newest package is approved first (and the command says so). The same package already live
with the same settings and healthy: nothing to do (exit 0). Otherwise a new model and endpoint config (data capture
of every request and response under ``s3://<bucket>/<endpoint>/data-capture``, the input of ``make
monitor``), then ``CreateEndpoint`` or ``UpdateEndpoint`` (blue/green: a failed update leaves the old config
serving), a wait for ``InService``, and the health check (``pipelines/deployment_health.py``). Unhealthy: the
endpoint is updated back to the previous config and the command exits 1 with the reason. Every attempt is recorded
(``pipelines/deployment_history.py``; list them with ``python -m pipelines.cli deployments``).

On ``--target local`` the stack at ``$AWS_ENDPOINT_URL`` is used when it answers, else it is started in the
background (``pipelines/bootstrap.py``); everything else is boto3 and the SageMaker SDK.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.bootstrap import BootstrapError, target_settings
from pipelines.console import command_parser, configure_cli_logging, say
from pipelines.deployment import (
    BUSY,
    DeployError,
    EndpointSpec,
    LiveEndpoint,
    Package,
    Say,
    Waiting,
    approve,
    create_config,
    live_endpoint,
    mark_health,
    resolve_package,
    roll_back,
    stamp,
    switch,
)
from pipelines.deployment_health import (
    HealthCheck,
    HealthDataError,
    HealthReport,
    Sample,
    check_health,
    health_data_uri,
    read_sample,
)
from pipelines.deployment_history import DeploymentHistory, DeploymentRecord, HistoryError, Outcome
from pipelines.settings import RunSettings, SettingsError, Target

logger = logging.getLogger(__name__)

PIPELINE = "credit-risk"  # the pipeline whose Features step wrote the test split the health check scores


@dataclass(frozen=True)
class Deployment:
    """Everything one run needs: clients, where to write, what a healthy endpoint is, how long to wait."""

    session: Any  # sagemaker.Session
    role: str
    history: DeploymentHistory
    check: HealthCheck
    sample: Sample | None  # the test rows the health check sends (None: no check)
    waiting: Waiting
    say: Say

    @property
    def sm(self) -> Any:
        return self.session.sagemaker_client

    @property
    def runtime(self) -> Any:
        return self.session.sagemaker_runtime_client


def deploy(run: Deployment, package: Package, spec: EndpointSpec) -> DeploymentRecord | None:
    """Deploy ``package`` to ``spec.endpoint``; None when it is already live (nothing done), else the record."""
    live = live_endpoint(run.sm, spec.endpoint)
    if live is not None and live.status in BUSY:
        raise DeployError(f"Endpoint {spec.endpoint} is {live.status}: another change is under way; retry later.")
    if live is not None and live.serves(package, spec):
        run.say(f"==> {spec.endpoint} already serves {package.arn} ({live.config_name}, healthy): nothing to do")
        return None
    started = _now()
    config = create_config(run.sm, run.role, package, spec, stamp())
    previous = live.config_name if live is not None and live.status != "Failed" else None
    run.say(f"==> {'updating' if previous else 'creating'} endpoint {spec.endpoint}: {previous or '-'} -> {config}")
    failure = switch(run.sm, spec.endpoint, config, live, run.waiting)
    if failure:
        stays = f"traffic stays on {previous}" if previous else "the endpoint serves nothing"
        outcome, reason, health = Outcome.FAILED, f"the update to {config} failed ({failure}); {stays}", None
    else:
        run.say(f"==> {config} InService: health check ({len(run.sample.labels) if run.sample else 0} test rows)")
        health = check_health(run.runtime, spec.endpoint, run.check, run.sample)
        mark_health(run.sm, config, health.passed)
        outcome, reason = _after_check(run, spec.endpoint, live, health)
        if outcome is Outcome.SUCCEEDED:
            approve(run.sm, package, spec.endpoint)
    record = DeploymentRecord(
        endpoint=spec.endpoint,
        endpoint_config=config,
        package_arn=package.arn,
        package_version=package.version,
        started=started,
        finished=_now(),
        outcome=outcome,
        previous_config=previous,
        reason=reason,
        health=health.figures if health else {},
    )
    run.history.record(record)
    return record


def _after_check(
    run: Deployment, endpoint: str, live: LiveEndpoint | None, health: HealthReport
) -> tuple[Outcome, str]:
    if health.passed:
        return Outcome.SUCCEEDED, health.reason
    if live is None or live.status == "Failed":
        return Outcome.UNHEALTHY, f"unhealthy: {health.reason}; no earlier config to roll back to"
    run.say(f"==> unhealthy ({health.reason}): rolling back to {live.config_name}")
    failure = roll_back(run.sm, endpoint, live.config_name, run.waiting)
    if failure:
        return Outcome.ROLLBACK_FAILED, f"unhealthy: {health.reason}; the rollback failed too: {failure}"
    return Outcome.ROLLED_BACK, f"unhealthy: {health.reason}; traffic is back on {live.config_name}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except (DeployError, HealthDataError, HistoryError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    if record is None:
        return 0
    say(f"==> recorded in {run.history.location(spec.endpoint)} ({record.outcome.value})")
    if record.outcome is not Outcome.SUCCEEDED:
        print(f"error: deployment {record.outcome.value}: {record.reason}", file=sys.stderr)  # noqa: T201
        return 1
    say(f"==> endpoint {spec.endpoint} InService with {record.endpoint_config}: {record.reason}")
    say(f"    data capture: {spec.sampling}% of requests and responses -> {spec.capture_uri}")
    say("    next: make monitor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
