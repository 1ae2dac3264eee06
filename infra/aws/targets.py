"""Where ``infra.aws`` talks to: the local stack (started if needed) or the AWS account of the environment.

The only difference between the two is the endpoint and the credentials: a :class:`Target` hands out boto3 clients.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.aws.config import InfraConfig
from infra.aws.errors import CredentialsError, InfraError
from infra.config import StackSettings

logger = logging.getLogger(__name__)

__all__ = ["Target", "connect", "local_target"]

LOCAL_KEY = "sagestack"  # the local stack accepts any credentials; these are what `infra.cli env` exports


@dataclass(frozen=True)
class Target:
    name: str
    region: str
    account_id: str
    session: boto3.Session
    endpoint_url: str | None = None

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    @property
    def is_local(self) -> bool:
        return self.name == "local"


def local_target(url: str, region: str) -> Target:
    session = boto3.Session(aws_access_key_id=LOCAL_KEY, aws_secret_access_key=LOCAL_KEY, region_name=region)
    identity = session.client("sts", endpoint_url=url).get_caller_identity()
    return Target("local", region, str(identity["Account"]), session, url)


def connect(config: InfraConfig, env: Mapping[str, str] | None = None) -> Target:
    """The target of ``config``: the local stack (started like ``infra.cli up`` when down) or AWS (checked first)."""
    source = os.environ if env is None else env
    if config.target == "local":
        return local_target(_ensure_local_stack(StackSettings.from_env(source)), config.region)
    return _aws_target(config, source)


def _ensure_local_stack(settings: StackSettings) -> str:
    from infra.cli import _health, cmd_up

    if not _health(settings.url) and cmd_up(settings) != 0:
        raise InfraError(f"the local stack did not start on {settings.url}; see {settings.data_dir / 'stack.log'}")
    return settings.url


def _aws_target(config: InfraConfig, env: Mapping[str, str]) -> Target:
    """AWS with the environment's credentials; fails fast, before any resource call, when they are missing."""
    if env.get("AWS_ENDPOINT_URL"):
        raise CredentialsError(
            f"AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']} is set (the local stack's environment?): unset it for "
            "TARGET=aws, or use TARGET=local"
        )
    session = boto3.Session(region_name=config.region)
    if session.get_credentials() is None:
        raise CredentialsError(
            "TARGET=aws needs AWS credentials and none were found: set AWS_PROFILE (aws sso login / aws configure), "
            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in GitHub Actions assume the CI role through OIDC "
            "(aws-actions/configure-aws-credentials). Nothing was created."
        )
    try:
        identity = session.client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise CredentialsError(
            f"AWS rejected the credentials of the environment ({exc}). Nothing was created."
        ) from exc
    logger.info("AWS account %s as %s", identity["Account"], identity["Arn"])
    return Target("aws", config.region, str(identity["Account"]), session)
