"""The environment files ``conf/<target>.yml``, read into frozen dataclasses: the one place ``infra.aws`` reads config.

``TARGET`` (``local`` or ``aws``) picks the file; ``SAGESTACK_CONF_DIR`` points at another directory of them (tests);
``AWS_REGION`` / ``AWS_DEFAULT_REGION`` override the file's region. Nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.aws.errors import ConfigError

__all__ = ["TARGETS", "GitHubConfig", "InfraConfig", "conf_dir"]

TARGETS = ("local", "aws")
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class GitHubConfig:
    repository: str
    branch: str
    environment: str
    oidc_provider_arn: str


@dataclass(frozen=True)
class InfraConfig:
    """What ``infra.aws`` needs of one environment file."""

    target: str
    region: str
    stack_name: str
    prefix: str
    bucket_pattern: str
    model_package_groups: Mapping[str, str]
    github: GitHubConfig
    local_registry_port: int

    @classmethod
    def load(cls, target: str, env: Mapping[str, str] | None = None) -> InfraConfig:
        source = os.environ if env is None else env
        if target not in TARGETS:
            raise ConfigError(f"unknown target {target!r}: expected one of {', '.join(TARGETS)}")
        path = conf_dir(source) / f"{target}.yml"
        raw = _read(path)
        github = _section(raw, "github", path)
        groups = _section(raw, "model_package_groups", path)
        return cls(
            target=target,
            region=source.get("AWS_REGION") or source.get("AWS_DEFAULT_REGION") or _text(raw, "region", path),
            stack_name=_text(raw, "stack_name", path),
            prefix=_text(raw, "prefix", path),
            bucket_pattern=_text(raw, "bucket", path),
            model_package_groups={
                "credit_risk": _text(groups, "credit_risk", path),
                "segmentation": _text(groups, "segmentation", path),
            },
            github=GitHubConfig(
                repository=_text(github, "repository", path),
                branch=_text(github, "branch", path),
                environment=_text(github, "environment", path),
                oidc_provider_arn=str(github.get("oidc_provider_arn") or ""),
            ),
            local_registry_port=int(raw.get("local_registry_port") or 5000),
        )

    def bucket(self, account_id: str) -> str:
        return self.bucket_pattern.format(account=account_id, region=self.region, prefix=self.prefix)

    def parameters(self, account_id: str) -> dict[str, str]:
        """The template's parameters (infra/aws/template.yaml) for this environment."""
        return {
            "Prefix": self.prefix,
            "BucketName": self.bucket(account_id),
            "CreditRiskGroupName": self.model_package_groups["credit_risk"],
            "SegmentationGroupName": self.model_package_groups["segmentation"],
            "GitHubRepository": self.github.repository,
            "GitHubBranch": self.github.branch,
            "GitHubEnvironment": self.github.environment,
            "GitHubOidcProviderArn": self.github.oidc_provider_arn,
        }


def conf_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("SAGESTACK_CONF_DIR") or ROOT / "conf")


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the environment file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping")
    return loaded


def _section(raw: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: `{key}` must be a mapping")
    return value


def _text(raw: Mapping[str, Any], key: str, path: Path) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: `{key}` must be a non-empty string")
    return value
