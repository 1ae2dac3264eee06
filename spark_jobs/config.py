"""The one place ``spark_jobs`` reads its environment: typed, frozen, and never at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AwsSettings:
    """Where boto3 clients point. ``endpoint_url=None`` means real AWS (or whatever boto3 resolves itself).

    Instances are pickled to executors, so clients built there honour the same endpoint as the driver.
    """

    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AwsSettings:
        source = os.environ if env is None else env
        region = source.get("AWS_REGION") or source.get("AWS_DEFAULT_REGION")
        return cls(endpoint_url=source.get("AWS_ENDPOINT_URL") or None, region=region or None)

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client for ``service``; ``config`` goes to ``botocore.config.Config``."""
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {"config": Config(**config)} if config else {}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.region:
            kwargs["region_name"] = self.region
        return boto3.client(service, **kwargs)


@dataclass(frozen=True)
class SparkSettings:
    """How a job builds its SparkSession. ``master=None`` leaves it to ``spark-submit`` / the cluster."""

    master: str | None = "local[2]"
    app_name: str = "sagestack"
    shuffle_partitions: int = 4
    driver_memory: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
