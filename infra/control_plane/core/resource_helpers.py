"""Small helpers shared by the SageMaker resource modules: ARNs, clock, tags, lookups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from infra.control_plane.core.errors import ServiceError
from infra.control_plane.core.store import Store

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(tz=UTC)


def arn_for(kind: str, name: str, account_id: str, region: str) -> str:
    """``arn:aws:sagemaker:<region>:<account>:<kind>/<name>``; SageMaker lower-cases names in ARNs."""
    return f"arn:aws:sagemaker:{region}:{account_id}:{kind}/{name.lower()}"


def get_or_raise(store: Store[T], name: str) -> T:
    """The one lookup used by every handler; the store raises the kind's AWS error when absent."""
    return store.get_or_raise(name)


def tags_from(params: Mapping[str, Any]) -> list[dict[str, str]]:
    raw: Sequence[Mapping[str, str]] = params.get("Tags") or []
    return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in raw]


def not_found(message_template: str, error: type[ServiceError]) -> Any:
    """A ``not_found`` factory for :class:`Store`: ``message_template`` takes ``{name}``."""

    def build(name: str) -> ServiceError:
        return error(message_template.format(name=name))

    return build
