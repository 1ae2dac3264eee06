"""Where a pipeline runs: the one module of ``pipelines`` that reads the environment."""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass

import boto3
from sagemaker.workflow.pipeline_context import PipelineSession

LOCAL_ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


class Target(str, enum.Enum):
    LOCAL = "local"
    AWS = "aws"


class SettingsError(ValueError):
    """The environment does not say enough to run on the chosen target."""


@dataclass(frozen=True)
class RunSettings:
    target: Target
    role: str
    region: str

    @classmethod
    def from_env(cls, target: Target, env: Mapping[str, str] | None = None) -> RunSettings:
        source = os.environ if env is None else env
        region = source.get("AWS_REGION") or source.get("AWS_DEFAULT_REGION") or "us-east-1"
        role = source.get("SAGEMAKER_ROLE_ARN") or (LOCAL_ROLE if target is Target.LOCAL else "")
        if not role:
            raise SettingsError("TARGET=aws needs SAGEMAKER_ROLE_ARN: the execution role SageMaker jobs assume.")
        return cls(target, role, region)

    def session(self) -> PipelineSession:
        return PipelineSession(boto_session=boto3.Session(region_name=self.region))
