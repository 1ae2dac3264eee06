"""moto's IAM, CloudWatch Logs (groups, streams), CloudWatch metrics and ECR as rows, and back (docs/local-stack.md).

Each service is read through its backend's public methods and its models' public attributes (``list_roles``,
``list_attached_role_policies``, ``describe_log_groups``, ``describe_repositories``, ``describe_images``,
``get_all_metrics``...) into ``(kind, name) -> JSON`` per account/region, and refilled at start through the same
methods a request would call (``create_policy``, ``create_role``, ``attach_role_policy``, ``create_log_group``,
``create_repository``, ``put_image``, ``put_metric_data``...). Log events are not rows here: :mod:`moto_mirror`
appends them to ``log_events``. What is not kept is listed in docs/local-stack.md ("What persists").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

Rows = dict[tuple[str, str], str]  # (kind, name) -> body

# Restore order: a kind is restored after the kinds before it (a role's attached policies exist first).
KIND_ORDER = ("policy", "role", "log-group", "log-stream", "repository", "image", "metric", "stack")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


# --- IAM (global) ----------------------------------------------------------------------------------------------


def iam_rows(backend: Any) -> Rows:
    rows: Rows = {}
    policies, _ = backend.list_policies(None, 100000, False, "/", "Local")
    for policy in policies:
        version = backend.get_policy_version(policy.arn, policy.default_version_id)
        document = version.document if isinstance(version.document, str) else json.dumps(version.document)
        rows["policy", policy.arn] = _json(
            {"name": policy.name, "path": policy.path, "description": policy.description, "document": document}
        )
    roles, _ = backend.list_roles(None, None, 100000)
    for role in roles:
        attached, _ = backend.list_attached_role_policies(role.name, None, 100000, "/")
        inline = {name: backend.get_role_policy(role.name, name)[1] for name in backend.list_role_policies(role.name)}
        tags, _ = backend.list_role_tags(role.name, None, 100000)
        rows["role", role.name] = _json(
            {
                "path": role.path,
                "assume": role.assume_role_policy_document,
                "description": role.description,
                "boundary": role.permissions_boundary_arn if hasattr(role, "permissions_boundary_arn") else None,
                "max_session": role.max_session_duration,
                "tags": tags,
                "attached": sorted(p.arn for p in attached),
                "inline": inline,
            }
        )
    return rows


def iam_restore(backend: Any, kind: str, name: str, body: dict[str, Any]) -> None:
    if kind == "policy":
        backend.create_policy(body["description"] or "", body["path"], body["document"], body["name"], [])
        return
    assume = body["assume"] if isinstance(body["assume"], str) else json.dumps(body["assume"])
    backend.create_role(
        name, assume, body["path"], body["boundary"], body["description"] or "", body["tags"], body["max_session"]
    )
    for arn in body["attached"]:
        backend.attach_role_policy(arn, name)
    for policy_name, document in body["inline"].items():
        backend.put_role_policy(name, policy_name, document if isinstance(document, str) else json.dumps(document))


# --- CloudWatch Logs ---------------------------------------------------------------------------------------------


def log_groups(backend: Any) -> Iterator[Any]:
    """Every log group (``describe_log_groups`` is paginated: a page and the next token)."""
    token: str | None = None
    while True:
        page, token = backend.describe_log_groups(next_token=token) if token else backend.describe_log_groups()
        yield from page
        if not token or not page:
            return


def log_streams(backend: Any, group: str) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        streams, token = backend.describe_log_streams(False, 50, group, None, "", token, "LogStreamName")
        yield from streams
        if not token or not streams:
            return


def logs_rows(backend: Any) -> Rows:
    rows: Rows = {}
    for group in log_groups(backend):
        rows["log-group", group.name] = _json({"retention": group.retention_in_days})
        for stream in log_streams(backend, group.name):
            rows["log-stream", f"{group.name}\0{stream['logStreamName']}"] = _json({})
    return rows


def logs_restore(backend: Any, kind: str, name: str, body: dict[str, Any]) -> None:
    if kind == "log-group":
        backend.create_log_group(name, {})
        if body.get("retention"):
            backend.put_retention_policy(name, body["retention"])
        return
    group, _, stream = name.partition("\0")
    backend.create_log_stream(group, stream)


# --- CloudWatch metrics ------------------------------------------------------------------------------------------


def metrics_rows(backend: Any) -> Rows:
    """Every single-value datum, keyed by its place in moto's list (data points are only ever appended)."""
    rows: Rows = {}
    for index, datum in enumerate(backend.get_all_metrics()):
        if not hasattr(datum, "value"):
            continue  # a statistic set (StatisticValues): not kept, see docs/local-stack.md
        stamp = datum.timestamp.isoformat() if isinstance(datum.timestamp, datetime) else str(datum.timestamp)
        rows["metric", f"{index:012d}"] = _json(
            {
                "namespace": datum.namespace,
                "name": datum.name,
                "value": datum.value,
                "dimensions": [{"Name": d.name, "Value": d.value} for d in datum.dimensions],
                "timestamp": stamp,
                "unit": datum.unit,
            }
        )
    return rows


def metrics_restore(backend: Any, kind: str, name: str, body: dict[str, Any]) -> None:
    datum: dict[str, Any] = {
        "MetricName": body["name"],
        "Value": body["value"],
        "Dimensions": body["dimensions"],
        "Timestamp": datetime.fromisoformat(body["timestamp"]),
    }
    if body.get("unit"):
        datum["Unit"] = body["unit"]
    backend.put_metric_data(body["namespace"], [datum])


# --- ECR ---------------------------------------------------------------------------------------------------------


def ecr_rows(backend: Any) -> Rows:
    rows: Rows = {}
    for repository in backend.describe_repositories():
        tags = backend.list_tags_for_resource(repository.arn).get("tags", [])
        rows["repository", repository.name] = _json(
            {
                "mutability": repository.image_tag_mutability,
                "scan": repository.image_scanning_configuration,
                "encryption": repository.encryption_configuration,
                "tags": tags,
            }
        )
        for image in backend.describe_images(repository.name):
            digest = image.get_image_digest()
            for tag in image.image_tags or [None]:
                rows["image", f"{repository.name}\0{digest}\0{tag or ''}"] = _json(
                    {"manifest": image.image_manifest, "media_type": image.image_manifest_media_type}
                )
    return rows


def ecr_restore(backend: Any, kind: str, name: str, body: dict[str, Any]) -> None:
    if kind == "repository":
        backend.create_repository(name, None, body["encryption"], body["scan"], body["mutability"], body["tags"])
        return
    repository, digest, tag = name.split("\0")
    backend.put_image(repository, body["manifest"], tag or None, body["media_type"], digest)
