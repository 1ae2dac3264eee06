"""The SageMaker side of a deployment: which package, what is live, a new model + endpoint config, the switch.

Blue/green through ``UpdateEndpoint``: every deployment gets its own endpoint config (``<endpoint>-<UTC stamp>``);
SageMaker brings the new fleet up beside the old one and moves the traffic only once it is healthy, and a failed
update leaves the endpoint on the old config. Each config is tagged with the package it serves
(``ModelPackageArn``) and, after the health check, ``DeploymentHealth`` = ``Passed``/``Failed``: that is how a re-run
recognises the same package already live.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)

PACKAGE_TAG = "ModelPackageArn"
HEALTH_TAG = "DeploymentHealth"
NOT_FOUND = ("ValidationException", "ResourceNotFound")
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")

Say = Callable[[str], None]


class DeployError(RuntimeError):
    """The package cannot be found or deployed as asked; the message says what to do."""


@dataclass(frozen=True)
class Package:
    arn: str
    version: int | None
    status: str
    image: str
    model_data: str
    environment: dict[str, str]


@dataclass(frozen=True)
class EndpointSpec:
    """What the endpoint should serve besides the package: one instance of ``instance_type``, data capture."""

    endpoint: str
    instance_type: str
    sampling: int
    capture_uri: str


@dataclass(frozen=True)
class LiveEndpoint:
    status: str
    config_name: str
    failure_reason: str | None
    package_arn: str | None
    healthy: bool
    instance_type: str | None
    sampling: int | None
    capture_uri: str | None
    last_modified: datetime | None = None

    def serves(self, package: Package, spec: EndpointSpec) -> bool:
        """True when re-deploying would change nothing: same package, same settings, healthy and in service."""
        return (
            self.status == "InService"
            and self.healthy
            and self.package_arn == package.arn
            and (self.instance_type, self.sampling, self.capture_uri)
            == (spec.instance_type, spec.sampling, spec.capture_uri)
        )


def resolve_package(sm: Any, group: str, wanted: str | None, say: Say) -> Package:
    """``wanted`` (ARN or version), else the newest Approved package, else the newest one, approved now."""
    if wanted:
        arn = wanted if wanted.startswith("arn:") else _arn_of_version(sm, group, _version(wanted))
        package = _package(sm, arn)
        if package.status == "Rejected":
            raise DeployError(f"Model package {arn} is Rejected: approve it or deploy another one.")
        return package
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


def approve(sm: Any, package: Package, endpoint: str) -> None:
    """A package serving healthy traffic is an approved one (the pipeline registers PendingManualApproval)."""
    if package.status != "Approved":
        sm.update_model_package(
            ModelPackageArn=package.arn,
            ModelApprovalStatus="Approved",
            ApprovalDescription=f"Approved by make deploy: healthy on endpoint {endpoint}.",
        )


def _version(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise DeployError(f"--package takes a model package ARN or a version number, not {text!r}.") from exc


def _packages(sm: Any, group: str, status: str | None) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Descending"}
    if status:
        query["ModelApprovalStatus"] = status
    try:
        return list(sm.list_model_packages(MaxResults=100, **query)["ModelPackageSummaryList"])
    except ClientError as exc:
        raise DeployError(f"Cannot list the packages of {group} ({exc}): run `make pipeline` first.") from exc


def _arn_of_version(sm: Any, group: str, version: int) -> str:
    for item in _packages(sm, group, None):
        if item.get("ModelPackageVersion") == version:
            return str(item["ModelPackageArn"])
    raise DeployError(f"Model package group {group} has no version {version}.")


def _package(sm: Any, arn: str) -> Package:
    try:
        described = sm.describe_model_package(ModelPackageName=arn)
    except ClientError as exc:
        raise DeployError(f"Model package {arn} not found: {exc}") from exc
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


def live_endpoint(sm: Any, endpoint: str) -> LiveEndpoint | None:
    """The endpoint as it is now, with what its config serves; None when there is no such endpoint."""
    try:
        described = sm.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in NOT_FOUND:
            return None
        raise
    try:
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=config["EndpointConfigArn"]).get("Tags", [])}
    except ClientError as exc:  # the config was deleted by hand: what it serves is unknown, so deploy again
        if exc.response["Error"]["Code"] not in NOT_FOUND:
            raise
        config, tags = {}, {}
    variant = (config.get("ProductionVariants") or [{}])[0]
    capture = config.get("DataCaptureConfig") or {}
    return LiveEndpoint(
        status=described["EndpointStatus"],
        config_name=described["EndpointConfigName"],
        failure_reason=described.get("FailureReason"),
        package_arn=tags.get(PACKAGE_TAG),
        healthy=tags.get(HEALTH_TAG) == "Passed",
        instance_type=variant.get("InstanceType"),
        sampling=capture.get("InitialSamplingPercentage"),
        capture_uri=capture.get("DestinationS3Uri"),
        last_modified=described.get("LastModifiedTime"),
    )


def stamp() -> str:
    """UTC time to the millisecond: unique names for the model and config of one deployment, in time order."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")[:-3]


def create_config(sm: Any, role: str, package: Package, spec: EndpointSpec, when: str) -> str:
    """A model for the package and an endpoint config (one instance, data capture on); returns the config name."""
    version = f"v{package.version}" if package.version is not None else "pkg"
    model_name = f"{spec.endpoint}-{version}-{when}"
    container: dict[str, Any] = {"Image": package.image, "ModelDataUrl": package.model_data}
    if package.environment:
        container["Environment"] = dict(package.environment)
    sm.create_model(ModelName=model_name, PrimaryContainer=container, ExecutionRoleArn=role)
    config_name = f"{spec.endpoint}-{when}"
    sm.create_endpoint_config(
        EndpointConfigName=config_name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model_name,
                "InitialInstanceCount": 1,
                "InstanceType": spec.instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": spec.sampling,
            "DestinationS3Uri": spec.capture_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
        },
        Tags=[{"Key": PACKAGE_TAG, "Value": package.arn}],
    )
    return config_name


def mark_health(sm: Any, config_name: str, passed: bool) -> None:
    arn = sm.describe_endpoint_config(EndpointConfigName=config_name)["EndpointConfigArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": HEALTH_TAG, "Value": "Passed" if passed else "Failed"}])


@dataclass(frozen=True)
class Waiting:
    timeout_seconds: float = 1800.0
    poll_seconds: float = 5.0


def switch(sm: Any, endpoint: str, config_name: str, live: LiveEndpoint | None, waiting: Waiting) -> str | None:
    """Point ``endpoint`` at ``config_name`` (create, or blue/green update) and wait; None or why it failed."""
    if live is not None and live.status == "Failed":  # never served: AWS cannot update it, so start over
        sm.delete_endpoint(EndpointName=endpoint)
        _wait_gone(sm, endpoint, waiting)
        live = None
    if live is None:
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
        return wait_for(sm, endpoint, config_name, waiting)
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
    return wait_for(sm, endpoint, config_name, waiting, since=live.last_modified)


def roll_back(sm: Any, endpoint: str, previous: str, waiting: Waiting) -> str | None:
    """Traffic back to the previous config, keeping the endpoint's deployment config; None or why it failed."""
    since = sm.describe_endpoint(EndpointName=endpoint)["LastModifiedTime"]
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=previous, RetainDeploymentConfig=True)
    return wait_for(sm, endpoint, previous, waiting, since=since)


def wait_for(sm: Any, endpoint: str, config_name: str, waiting: Waiting, since: datetime | None = None) -> str | None:
    """Until ``endpoint`` serves ``config_name`` InService (None) or the change failed (the reason).

    ``since``: the endpoint's LastModifiedTime before this change. A FailureReason on a state no newer than that
    (left by an earlier failed update) is not this change's failure.
    """
    deadline = time.monotonic() + waiting.timeout_seconds
    changing = False
    while True:
        described = sm.describe_endpoint(EndpointName=endpoint)
        status, serving, reason = (
            described["EndpointStatus"],
            described["EndpointConfigName"],
            described.get("FailureReason"),
        )
        changing = changing or status in BUSY
        if status == "InService" and serving == config_name:
            return None
        fresh = bool(reason) and (changing or since is None or described["LastModifiedTime"] > since)
        if status in ("Failed", "UpdateRollbackFailed") or (status == "InService" and fresh):
            return f"{status} on {serving}: {reason or 'no reason given'}"
        if time.monotonic() > deadline:
            return f"still {status} after {waiting.timeout_seconds:.0f} s"
        time.sleep(waiting.poll_seconds)


def _wait_gone(sm: Any, endpoint: str, waiting: Waiting) -> None:
    deadline = time.monotonic() + waiting.timeout_seconds
    while time.monotonic() < deadline:
        try:
            sm.describe_endpoint(EndpointName=endpoint)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in NOT_FOUND:
                return
            raise
        time.sleep(waiting.poll_seconds)
    raise DeployError(f"Endpoint {endpoint} (Failed) is still being deleted after {waiting.timeout_seconds:.0f} s.")
