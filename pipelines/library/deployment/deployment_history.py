"""Deployment history: one JSON object per deployment attempt in the bucket, listed by
``python -m pipelines.commands.deployments``.

Where: ``s3://<bucket>/deployments/<endpoint>/<endpoint config>.json``. Every deployment creates its own endpoint
config (``<endpoint>-<UTC stamp>``), so keys sort in time order, no object is ever rewritten (no read-modify-write
race between two runs) and the history outlives endpoint configs that are cleaned up later. The bucket is the one
the deploy command also writes data capture to (the SDK's default bucket of the target).
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)

PREFIX = "deployments"


class Outcome(str, enum.Enum):
    """How a deployment attempt ended, and where the endpoint's traffic went."""

    SUCCEEDED = "Succeeded"  # the new config is live and passed its health check
    ROLLED_BACK = "RolledBack"  # the new config went live, failed its health check, traffic is back on the old one
    FAILED = "Failed"  # the update itself failed: the endpoint kept (or never left) the old config
    UNHEALTHY = "Unhealthy"  # a new endpoint failed its health check: there was no earlier config to return to
    ROLLBACK_FAILED = "RollbackFailed"  # unhealthy, and the update back to the old config failed too


@dataclass(frozen=True)
class DeploymentRecord:
    endpoint: str
    endpoint_config: str
    package_arn: str
    package_version: int | None
    started: str  # ISO 8601, UTC
    finished: str
    outcome: Outcome
    previous_config: str | None = None
    reason: str | None = None
    health: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "outcome": self.outcome.value}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> DeploymentRecord:
        loaded = json.loads(text)
        known = {name: loaded.get(name) for name in cls.__dataclass_fields__ if name in loaded}
        known["outcome"] = Outcome(loaded["outcome"])
        known["health"] = loaded.get("health") or {}
        return cls(**known)


class HistoryError(RuntimeError):
    """The history cannot be read or written (missing bucket, no permission); the message names the location."""


class DeploymentHistory:
    """Records of one bucket; ``s3`` is a boto3 S3 client."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def location(self, endpoint: str) -> str:
        return f"s3://{self.bucket}/{PREFIX}/{endpoint}/"

    def record(self, record: DeploymentRecord) -> str:
        key = f"{PREFIX}/{record.endpoint}/{record.endpoint_config}.json"
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=record.to_json().encode(), ContentType="application/json"
            )
        except ClientError as exc:
            raise HistoryError(f"Cannot write the deployment record s3://{self.bucket}/{key}: {exc}") from exc
        logger.info("deployment record s3://%s/%s", self.bucket, key)
        return f"s3://{self.bucket}/{key}"

    def records(self, endpoint: str) -> list[DeploymentRecord]:
        """Every record of ``endpoint``, oldest first."""
        records = []
        for key in sorted(self._keys(endpoint)):
            try:
                body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                records.append(DeploymentRecord.from_json(body))
            except (ClientError, ValueError, KeyError, TypeError) as exc:
                logger.warning("skipping unreadable deployment record s3://%s/%s: %s", self.bucket, key, exc)
        return sorted(records, key=lambda r: r.started)

    def _keys(self, endpoint: str) -> list[str]:
        keys: list[str] = []
        query = {"Bucket": self.bucket, "Prefix": f"{PREFIX}/{endpoint}/"}
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(**query):
                keys.extend(item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(".json"))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchBucket":
                return []
            raise HistoryError(f"Cannot list {self.location(endpoint)}: {exc}") from exc
        return keys


def history_table(records: list[DeploymentRecord], live_config: str | None) -> list[str]:
    """One line per deployment, oldest first; ``*`` marks the config serving traffic now."""
    lines = [f"  {'started (UTC)':<20} {'outcome':<15} {'endpoint config':<34} {'package':<18} reason", "-" * 110]
    for record in records:
        mark = "*" if record.endpoint_config == live_config else " "
        package = "/".join(record.package_arn.rsplit("/", 2)[-2:])
        reason = (record.reason or "").replace("\n", " ")
        started = record.started.replace("T", " ")[:19]
        lines.append(
            f"{mark} {started:<20} {record.outcome.value:<15} {record.endpoint_config:<34} {package:<18} {reason}"[:220]
        )
    if live_config:
        lines.append(f"(* = live: the endpoint serves {live_config})")
    return lines
