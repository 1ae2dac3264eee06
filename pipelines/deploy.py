"""``python -m pipelines.deploy``: deploy a model package of the ``credit-risk`` group to the ``credit-risk`` endpoint
with data capture on, creating the endpoint or updating it in place.

The package is ``--package`` (an ARN or a version number) or the newest ``Approved`` one; when the group has no
approved package, the newest package is approved first (and the command says so). The endpoint captures every
request and response (``DataCaptureConfig``, 100%) under ``s3://<default bucket>/<endpoint>/data-capture``, the
input of ``make monitor``. One scored row at the end shows the endpoint answering.

On ``--target local`` the stack at ``$AWS_ENDPOINT_URL`` is used when it answers, else it is started in the
background (``pipelines/bootstrap.py``); everything else is boto3 and the SageMaker SDK.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from pipelines.bootstrap import BootstrapError, ensure_local_stack
from pipelines.console import configure_cli_logging
from pipelines.settings import RunSettings, SettingsError, Target

logger = logging.getLogger(__name__)

GROUP = "credit-risk"
ENDPOINT = "credit-risk"
INSTANCE_TYPE = "ml.m5.large"
_POLL_SECONDS = 2.0
_DEPLOY_TIMEOUT_SECONDS = 900.0


class DeployError(RuntimeError):
    """The package cannot be found or the endpoint did not come up; the message says what to do."""


@dataclass(frozen=True)
class Package:
    arn: str
    version: int | None
    status: str
    image: str
    model_data: str
    environment: dict[str, str]


def resolve_package(sm: Any, group: str, wanted: str | None, say: Any = print) -> Package:
    """``wanted`` (ARN or version), else the newest Approved package, else the newest one, approved now."""
    if wanted:
        arn = wanted if wanted.startswith("arn:") else _arn_of_version(sm, group, int(wanted))
        return _package(sm, arn)
    approved = _packages(sm, group, "Approved")
    if approved:
        return _package(sm, approved[0]["ModelPackageArn"])
    every = _packages(sm, group, None)
    if not every:
        raise DeployError(f"Model package group {group} holds no package: run `make pipeline` first.")
    newest = every[0]
    sm.update_model_package(
        ModelPackageArn=newest["ModelPackageArn"],
        ModelApprovalStatus="Approved",
        ApprovalDescription="Approved by make deploy: the group had no approved package.",
    )
    say(
        f"==> no Approved package in {group}: approving the newest, version {newest.get('ModelPackageVersion')} "
        f"(was {newest.get('ModelApprovalStatus')})"
    )
    return _package(sm, newest["ModelPackageArn"])


def _packages(sm: Any, group: str, status: str | None) -> list[dict[str, Any]]:
    query: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 100,
    }
    if status:
        query["ModelApprovalStatus"] = status
    try:
        return list(sm.list_model_packages(**query)["ModelPackageSummaryList"])
    except ClientError as exc:
        raise DeployError(f"Cannot list the packages of {group} ({exc}): run `make pipeline` first.") from exc


def _arn_of_version(sm: Any, group: str, version: int) -> str:
    for item in _packages(sm, group, None):
        if item.get("ModelPackageVersion") == version:
            return str(item["ModelPackageArn"])
    raise DeployError(f"Model package group {group} has no version {version}.")


def _package(sm: Any, arn: str) -> Package:
    described = sm.describe_model_package(ModelPackageName=arn)
    containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
    if not containers or not containers[0].get("ModelDataUrl"):
        raise DeployError(f"Model package {arn} has no inference container with model data to deploy.")
    container = containers[0]
    return Package(
        arn=described["ModelPackageArn"],
        version=described.get("ModelPackageVersion"),
        status=described.get("ModelApprovalStatus", ""),
        image=container["Image"],
        model_data=container["ModelDataUrl"],
        environment=dict(container.get("Environment") or {}),
    )


def deploy(
    settings: RunSettings,
    package: Package,
    endpoint: str,
    instance_type: str,
    sampling: int,
    capture_uri: str | None,
    say: Any = print,
) -> dict[str, Any]:
    """A new model and endpoint config (with data capture) for the package; create or update the endpoint."""
    from sagemaker.model import Model
    from sagemaker.model_monitor import DataCaptureConfig

    session = sdk_session(settings)
    sm = session.sagemaker_client
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    version = f"v{package.version}" if package.version is not None else "pkg"
    model_name = f"{endpoint}-{version}-{stamp}"
    environment: dict[str, Any] = dict(package.environment)
    Model(
        image_uri=package.image,
        model_data=package.model_data,
        env=environment or None,
        role=settings.role,
        name=model_name,
        sagemaker_session=session,
    ).create(instance_type=instance_type)
    destination = capture_uri or f"s3://{session.default_bucket()}/{endpoint}/data-capture"
    capture = DataCaptureConfig(
        enable_capture=True,
        sampling_percentage=sampling,
        destination_s3_uri=destination,
        capture_options=["REQUEST", "RESPONSE"],
        csv_content_types=["text/csv"],
        json_content_types=["application/json"],
    )
    config_name = f"{endpoint}-{stamp}"
    session.create_endpoint_config(
        name=config_name,
        model_name=model_name,
        initial_instance_count=1,
        instance_type=instance_type,
        data_capture_config_dict=capture._to_request_dict(),
        tags=[{"Key": "ModelPackageArn", "Value": package.arn}],
    )
    if _endpoint_exists(sm, endpoint):
        say(f"==> updating endpoint {endpoint} in place to {config_name}")
        session.update_endpoint(endpoint, config_name, wait=False)
    else:
        say(f"==> creating endpoint {endpoint} ({config_name})")
        session.create_endpoint(endpoint, config_name, wait=False)
    described = _wait_in_service(sm, endpoint, config_name)
    return {"model": model_name, "config": config_name, "capture": destination, "endpoint": described}


def sdk_session(settings: RunSettings) -> Any:
    """A plain SDK session (``RunSettings.session`` is a PipelineSession, which would defer ``Model.create``)."""
    import boto3
    import sagemaker

    return sagemaker.Session(boto_session=boto3.Session(region_name=settings.region))


def _endpoint_exists(sm: Any, endpoint: str) -> bool:
    try:
        sm.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return False
        raise
    return True


def _wait_in_service(sm: Any, endpoint: str, config_name: str) -> dict[str, Any]:
    deadline = time.monotonic() + _DEPLOY_TIMEOUT_SECONDS
    while True:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=endpoint)
        status = described["EndpointStatus"]
        if status == "InService" and described["EndpointConfigName"] == config_name:
            return described
        if status == "Failed" or (status == "InService" and described.get("FailureReason")):
            raise DeployError(f"Endpoint {endpoint} did not deploy {config_name}: {described.get('FailureReason')}")
        if time.monotonic() > deadline:
            raise DeployError(f"Endpoint {endpoint} is still {status} after {_DEPLOY_TIMEOUT_SECONDS:.0f} s.")
        time.sleep(_POLL_SECONDS)


def smoke_test(settings: RunSettings, endpoint: str) -> tuple[str, float]:
    """Score one holdout row through the endpoint: (the CSV row, the score)."""
    import boto3

    from pipelines.monitor.data import csv_lines, encode, load

    data = load()
    row = csv_lines(encode(data.holdout_raw.head(1), data.columns))[0]
    runtime = boto3.Session(region_name=settings.region).client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=row.encode(), ContentType="text/csv")
    return row, float(answer["Body"].read().decode().strip().splitlines()[0])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--group", default=GROUP, help="model package group (default: credit-risk)")
    parser.add_argument("--package", help="model package ARN or version number (default: newest Approved)")
    parser.add_argument("--endpoint", default=ENDPOINT, help="endpoint name (default: credit-risk)")
    parser.add_argument("--target", choices=[t.value for t in Target], default=Target.LOCAL.value)
    parser.add_argument("--instance-type", default=INSTANCE_TYPE)
    parser.add_argument("--sampling", type=int, default=100, help="data capture sampling percentage")
    parser.add_argument(
        "--capture-uri", help="data capture destination (default: s3://<bucket>/<endpoint>/data-capture)"
    )
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_cli_logging(args.verbose)
    target = Target(args.target)
    say = _printer()
    try:
        if target is Target.LOCAL:
            say(f"==> local stack: {ensure_local_stack()}")
        settings = RunSettings.from_env(target)
        sm = sdk_session(settings).sagemaker_client
        package = resolve_package(sm, args.group, args.package, say)
        say(f"==> model package {package.arn} ({package.status})")
        result = deploy(settings, package, args.endpoint, args.instance_type, args.sampling, args.capture_uri, say)
        row, score = smoke_test(settings, args.endpoint)
    except (BootstrapError, SettingsError, DeployError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2 if isinstance(exc, BootstrapError | SettingsError) else 1
    say(f"==> endpoint {args.endpoint} InService with {result['model']}")
    say(f"    data capture: {args.sampling}% of requests and responses -> {result['capture']}")
    say(f"    test row scored {score:.4f} (probability of good credit risk)")
    say("    next: make monitor")
    logger.debug("scored %s", row)
    return 0


def _printer() -> Any:
    def say(line: str) -> None:
        print(line, flush=True)  # noqa: T201

    return say


if __name__ == "__main__":
    sys.exit(main())
