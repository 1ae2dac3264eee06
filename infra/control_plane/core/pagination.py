"""The one paginator every List* operation uses: filters, sort, NextToken and MaxResults as in the API."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from infra.control_plane.core.errors import ValidationException

T = TypeVar("T")


@dataclass(frozen=True)
class ListSpec(Generic[T]):
    """How to read the fields that List* filters and sorts by from one resource."""

    name: Callable[[T], str]
    creation_time: Callable[[T], datetime]
    status: Callable[[T], str] | None = None
    last_modified: Callable[[T], datetime] | None = None
    default_max_results: int = 10
    extra_sort_keys: Mapping[str, Callable[[T], Any]] = field(default_factory=dict)


def paginate(items: Sequence[T], params: Mapping[str, Any], spec: ListSpec[T]) -> tuple[list[T], str | None]:
    """Filter, sort and slice ``items``; return the page and the NextToken (None on the last page)."""
    selected = [item for item in items if _matches(item, params, spec)]
    selected.sort(key=_sort_key(params, spec), reverse=params.get("SortOrder", "Descending") == "Descending")
    start = _decode_token(params.get("NextToken"))
    size = int(params.get("MaxResults") or spec.default_max_results)
    page = selected[start : start + size]
    more = start + size < len(selected)
    return page, _encode_token(start + size) if more else None


def _matches(item: T, params: Mapping[str, Any], spec: ListSpec[T]) -> bool:
    contains = params.get("NameContains")
    if contains and contains.lower() not in spec.name(item).lower():
        return False
    status = params.get("StatusEquals")
    if status and spec.status is not None and spec.status(item) != status:
        return False
    if not _in_window(spec.creation_time(item), params, "CreationTime"):
        return False
    return spec.last_modified is None or _in_window(spec.last_modified(item), params, "LastModifiedTime")


def _in_window(moment: datetime, params: Mapping[str, Any], prefix: str) -> bool:
    after, before = params.get(prefix + "After"), params.get(prefix + "Before")
    if after is not None and moment <= _as_datetime(after):
        return False
    return before is None or moment < _as_datetime(before)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _sort_key(params: Mapping[str, Any], spec: ListSpec[T]) -> Callable[[T], Any]:
    sort_by = params.get("SortBy", "CreationTime")
    if sort_by in spec.extra_sort_keys:
        return spec.extra_sort_keys[sort_by]
    if sort_by == "Name":
        return spec.name
    if sort_by == "Status" and spec.status is not None:
        return spec.status
    return spec.creation_time


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode("ascii")


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode()
        return max(0, int(text.removeprefix("offset:")))
    except (ValueError, UnicodeError) as exc:
        raise ValidationException(f"Invalid pagination token: {token}") from exc
