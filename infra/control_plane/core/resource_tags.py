"""AddTags / ListTags / DeleteTags over every taggable resource of a backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import tags_from, utcnow

_EPOCH = utcnow()
_TAG_LIST: ListSpec[dict[str, str]] = ListSpec(
    name=lambda t: t["Key"], creation_time=lambda t: _EPOCH, default_max_results=50
)


class Tags:
    """Tags live with each resource service (``service.tags[arn]``); this finds the right one by ARN."""

    def __init__(self, services: Sequence[Any]) -> None:
        self._services = services

    def _tags_for(self, arn: str) -> list[dict[str, str]]:
        for service in self._services:
            tags: Mapping[str, list[dict[str, str]]] = getattr(service, "tags", {})  # some services tag nothing
            if arn in tags:
                return tags[arn]
        raise ValidationException(f"Resource {arn} does not exist or is not taggable.")

    def add_tags(self, params: Mapping[str, Any]) -> dict[str, Any]:
        current = self._tags_for(str(params["ResourceArn"]))
        new = tags_from(params)
        keys = {t["Key"] for t in new}
        current[:] = [t for t in current if t["Key"] not in keys] + new
        return {"Tags": new}

    def list_tags(self, params: Mapping[str, Any]) -> dict[str, Any]:
        current = self._tags_for(str(params["ResourceArn"]))
        page, token = paginate(list(current), {**params, "SortOrder": "Ascending", "SortBy": "Name"}, _TAG_LIST)
        return {"Tags": page, "NextToken": token}

    def delete_tags(self, params: Mapping[str, Any]) -> dict[str, Any]:
        current = self._tags_for(str(params["ResourceArn"]))
        drop = set(params.get("TagKeys") or [])
        current[:] = [t for t in current if t["Key"] not in drop]
        return {}
