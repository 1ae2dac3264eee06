"""Where a pipeline runs: the one module of ``pipelines`` that reads the environment and ``conf/<target>.yml``.

The environment file names what differs per target (stack, groups, endpoint, instance types, small-data switches);
the environment holds only region and credentials. On ``aws`` the execution role and the data bucket are the
outputs of the stack ``make infra`` deployed (``ExecutionRoleArn``, ``BucketName``) unless ``SAGEMAKER_ROLE_ARN``
names a role.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import sagemaker
import yaml
from botocore.exceptions import BotoCoreError, ClientError
from sagemaker.workflow.pipeline_context import PipelineSession

from pipelines.library import sdk_config

LOCAL_ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


class Target(str, enum.Enum):
    LOCAL = "local"
    AWS = "aws"


class SettingsError(ValueError):
    """The environment does not say enough to run on the chosen target."""


@dataclass(frozen=True)
class EnvironmentConfig:
    """The pipelines' part of ``conf/<target>.yml``."""

    stack_name: str = "sagestack"
    endpoint_name: str = "credit-risk"
    model_package_groups: Mapping[str, str] = field(
        default_factory=lambda: {"credit_risk": "credit-risk", "segmentation": "segmentation"}
    )
    instance_types: Mapping[str, str] = field(
        default_factory=lambda: {"training": "ml.m5.large", "endpoint": "ml.m5.large", "monitor": "ml.m5.xlarge"}
    )
    segmentation_rows: int = 0
    tuning: str = "auto"

    @classmethod
    def load(cls, target: Target, env: Mapping[str, str]) -> EnvironmentConfig:
        path = Path(env.get("SAGESTACK_CONF_DIR") or CONF_DIR) / f"{target.value}.yml"
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"cannot read the environment file {path}: {exc}") from exc
        small = raw.get("small_data") or {}
        defaults = cls()
        return cls(
            stack_name=str(raw.get("stack_name") or defaults.stack_name),
            endpoint_name=str(raw.get("endpoint_name") or defaults.endpoint_name),
            model_package_groups={**defaults.model_package_groups, **(raw.get("model_package_groups") or {})},
            instance_types={**defaults.instance_types, **(raw.get("instance_types") or {})},
            segmentation_rows=int(small.get("segmentation_rows") or 0),
            tuning=str(small.get("tuning") or defaults.tuning),
        )


@dataclass(frozen=True)
class RunSettings:
    target: Target
    role: str
    region: str
    bucket: str | None = None  # None: the SDK's default bucket (the local stack's sagemaker-<region>-<account>)
    conf: EnvironmentConfig = field(default_factory=EnvironmentConfig)

    @classmethod
    def from_env(cls, target: Target, env: Mapping[str, str] | None = None) -> RunSettings:
        source = os.environ if env is None else env
        region = source.get("AWS_REGION") or source.get("AWS_DEFAULT_REGION") or "us-east-1"
        conf = EnvironmentConfig.load(target, source)
        if target is Target.AWS:
            _check_aws_environment(source, region)
        outputs = _stack_outputs(conf.stack_name, region) if target is Target.AWS else {}
        role = source.get("SAGEMAKER_ROLE_ARN") or outputs.get("ExecutionRoleArn") or ""
        if not role and target is Target.LOCAL:
            role = LOCAL_ROLE
        if not role:
            raise SettingsError(
                f"TARGET=aws needs the execution role: deploy the stack {conf.stack_name} (make infra TARGET=aws) "
                "or set SAGEMAKER_ROLE_ARN."
            )
        return cls(target, role, region, outputs.get("BucketName"), conf)

    def session(self) -> PipelineSession:
        """The pipeline session (definitions are built with it, then upserted and started)."""
        sdk_config.install()
        return PipelineSession(boto_session=boto3.Session(region_name=self.region), default_bucket=self.bucket)

    def sdk_session(self) -> sagemaker.Session:
        """A plain SDK session (deploy, monitor, CLI look-ups) on the same region and bucket."""
        sdk_config.install()
        return sagemaker.Session(boto_session=boto3.Session(region_name=self.region), default_bucket=self.bucket)


def _check_aws_environment(source: Mapping[str, str], region: str) -> None:
    """TARGET=aws: no local endpoint override and some credentials, before anything is called or created."""
    if source.get("AWS_ENDPOINT_URL"):
        raise SettingsError(
            f"AWS_ENDPOINT_URL={source['AWS_ENDPOINT_URL']} is set (the local stack's environment?): unset it for "
            "TARGET=aws, or use TARGET=local."
        )
    if boto3.Session(region_name=region).get_credentials() is None:
        raise SettingsError(
            "TARGET=aws needs AWS credentials and none were found: set AWS_PROFILE (aws sso login / aws configure) "
            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in GitHub Actions assume the CI role through OIDC."
        )


def _stack_outputs(stack_name: str, region: str) -> dict[str, str]:
    """The outputs of ``stack_name`` on AWS, or nothing when it cannot be read (then SAGEMAKER_ROLE_ARN must say)."""
    try:
        stacks: list[dict[str, Any]] = (
            boto3.Session(region_name=region).client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
        )
    except (ClientError, BotoCoreError):
        return {}
    return {o["OutputKey"]: o["OutputValue"] for o in (stacks[0].get("Outputs") or [])} if stacks else {}
