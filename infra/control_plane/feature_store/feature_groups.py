"""Feature groups: Create/Describe/List/Update/Delete and feature metadata, with AWS's status transitions.

A group is ``Creating`` until its stores exist (the Glue table is registered), then ``Created``; DeleteFeatureGroup
moves it to ``Deleting`` and its online records are dropped before it disappears (the offline store's files stay, as
on AWS). See docs/feature-store.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from infra.control_plane.core.durable.record_journal import RESTART_REASON
from infra.control_plane.core.errors import ResourceInUse, ResourceNotFound, ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import arn_for, tags_from, utcnow
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.feature_store.feature_group_requests import (
    check_create,
    check_definitions,
    resolve_offline_config,
    ttl_seconds,
)
from infra.control_plane.feature_store.feature_types import FeatureSpec

logger = logging.getLogger(__name__)


class FeatureGroupStatus(StrEnum):
    CREATING = "Creating"
    CREATED = "Created"
    CREATE_FAILED = "CreateFailed"
    DELETING = "Deleting"
    DELETE_FAILED = "DeleteFailed"


@dataclass
class FeatureMetadata:
    description: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    creation_time: datetime = field(default_factory=utcnow)
    last_modified_time: datetime = field(default_factory=utcnow)


@dataclass
class FeatureGroup:
    name: str
    arn: str
    request: Mapping[str, Any]
    features: list[FeatureSpec]
    offline_config: dict[str, Any] | None
    online_config: dict[str, Any] | None
    creation_time: datetime = field(default_factory=utcnow)
    status: FeatureGroupStatus = FeatureGroupStatus.CREATING
    last_modified_time: datetime | None = None
    failure_reason: str | None = None
    last_update_status: dict[str, str] | None = None
    metadata: dict[str, FeatureMetadata] = field(default_factory=dict)

    @property
    def record_identifier(self) -> FeatureSpec:
        return self.spec_or_raise(str(self.request["RecordIdentifierFeatureName"]))

    @property
    def event_time(self) -> FeatureSpec:
        return self.spec_or_raise(str(self.request["EventTimeFeatureName"]))

    @property
    def online_enabled(self) -> bool:
        return bool(self.online_config and self.online_config.get("EnableOnlineStore"))

    @property
    def ttl_seconds(self) -> float | None:
        return ttl_seconds((self.online_config or {}).get("TtlDuration"))

    @property
    def offline_location(self) -> str | None:
        return None if self.offline_config is None else self.offline_config["S3StorageConfig"]["ResolvedOutputS3Uri"]

    def spec(self, name: str) -> FeatureSpec | None:
        """The feature named ``name`` (a dict look-up: this runs for every value of every record written)."""
        index = self.__dict__.get("_spec_index")
        if index is None or index[0] is not self.features or index[1] != len(self.features):
            index = (self.features, len(self.features), {s.name: s for s in self.features})
            self.__dict__["_spec_index"] = index  # not a field: rebuilt when the features change, never persisted
        found: FeatureSpec | None = index[2].get(name)
        return found

    def spec_or_raise(self, name: str) -> FeatureSpec:
        spec = self.spec(name)
        if spec is None:
            raise ValidationException(f"The feature {name} is not defined in feature group {self.name}.")
        return spec

    def to_api(self) -> dict[str, Any]:
        return {
            "FeatureGroupArn": self.arn,
            "FeatureGroupName": self.name,
            "RecordIdentifierFeatureName": self.request["RecordIdentifierFeatureName"],
            "EventTimeFeatureName": self.request["EventTimeFeatureName"],
            "FeatureDefinitions": [_definition(s) for s in self.features],
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "OnlineStoreConfig": self.online_config,
            "OfflineStoreConfig": self.offline_config,
            "ThroughputConfig": self.request.get("ThroughputConfig") or {"ThroughputMode": "OnDemand"},
            "RoleArn": self.request.get("RoleArn"),
            "FeatureGroupStatus": self.status,
            "OfflineStoreStatus": {"Status": "Active"} if self.offline_config is not None else None,
            "LastUpdateStatus": self.last_update_status,
            "FailureReason": self.failure_reason,
            "Description": self.request.get("Description"),
            "OnlineStoreTotalSizeBytes": 0 if self.online_enabled else None,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "FeatureGroupName": self.name,
            "FeatureGroupArn": self.arn,
            "CreationTime": self.creation_time,
            "FeatureGroupStatus": self.status,
            "OfflineStoreStatus": {"Status": "Active"} if self.offline_config is not None else None,
        }


def _definition(spec: FeatureSpec) -> dict[str, Any]:
    return {"FeatureName": spec.name, "FeatureType": spec.type.value, "CollectionType": spec.collection}


class StoreLifecycle(Protocol):
    """What happens to a group's stores when it is created, gains features, or is deleted."""

    def created(self, group: FeatureGroup) -> None: ...

    def updated(self, group: FeatureGroup) -> None: ...

    def deleted(self, group: FeatureGroup) -> None: ...


_LIST_SPEC: ListSpec[FeatureGroup] = ListSpec(
    name=lambda g: g.name,
    creation_time=lambda g: g.creation_time,
    extra_sort_keys={
        "FeatureGroupStatus": lambda g: g.status.value,
        "OfflineStoreStatus": lambda g: "Active" if g.offline_config is not None else "",
    },
)


class FeatureGroups:
    def __init__(
        self,
        account_id: str,
        region: str,
        lifecycle: StoreLifecycle,
        bucket_exists: Callable[[str], bool],
        transition_seconds: float = 0.5,
    ) -> None:
        self._account_id = account_id
        self._region = region
        self._lifecycle = lifecycle
        self._bucket_exists = bucket_exists
        self._transition_seconds = transition_seconds
        self.store: Store[FeatureGroup] = Store(
            "feature-group",
            lambda name: ResourceNotFound(f"Resource Not Found: Feature group {name} not found."),
            FeatureGroup,
        )
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("feature-group-tags", list)

    def recover_after_restart(self) -> None:
        """Restart semantics (docs/local-stack.md): a group being created or deleted finishes that move; every
        created group's Glue table is registered again (the Glue catalog is moto's, rebuilt from these records)."""
        for group in self.store.values():
            if group.status is FeatureGroupStatus.CREATING:
                self._later(self._finish_create, group)
            elif group.status is FeatureGroupStatus.DELETING:
                self._later(self._finish_delete, group)
            elif group.status is FeatureGroupStatus.CREATED:
                try:
                    self._lifecycle.created(group)
                except Exception as exc:
                    logger.exception("feature group %s: its stores could not be registered again", group.name)
                    group.failure_reason = f"{RESTART_REASON} Its stores could not be registered again: {exc}"
                    group.status = FeatureGroupStatus.CREATE_FAILED
                    self.store.changed(group.name)

    def arn(self, name: str) -> str:
        return arn_for("feature-group", name, self._account_id, self._region)

    def resolve(self, name_or_arn: str) -> FeatureGroup:
        """A group by name or ARN (the runtime accepts both)."""
        name = name_or_arn.rsplit("feature-group/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
        group = self.store.find(name)
        if group is None:
            group = next((g for g in self.store.values() if g.name.lower() == name.lower()), None)
        if group is None:
            raise ResourceNotFound(f"Resource Not Found: Feature group {name} not found.")
        return group

    def create_feature_group(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["FeatureGroupName"])
        specs = check_create(params, self._bucket_exists)
        created = utcnow()
        offline = params.get("OfflineStoreConfig")
        group = FeatureGroup(
            name=name,
            arn=self.arn(name),
            request=dict(params),
            features=specs,
            offline_config=None
            if offline is None
            else resolve_offline_config(offline, name, created, self._account_id, self._region),
            online_config=dict(params["OnlineStoreConfig"]) if params.get("OnlineStoreConfig") else None,
            creation_time=created,
            metadata={s.name: FeatureMetadata(creation_time=created, last_modified_time=created) for s in specs},
        )
        self.store.add(
            name,
            group,
            lambda n: ResourceInUse(
                f"Resource Already Exists: FeatureGroup with name {n} already exists. Choose a different name."
            ),
        )
        self.tags[group.arn] = tags_from(params)
        self._later(self._finish_create, group)
        return {"FeatureGroupArn": group.arn}

    def describe_feature_group(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.resolve(str(params["FeatureGroupName"])).to_api()

    def list_feature_groups(self, params: Mapping[str, Any]) -> dict[str, Any]:
        status = params.get("FeatureGroupStatusEquals")
        offline = params.get("OfflineStoreStatusEquals")
        groups = [
            g
            for g in self.store.values()
            if (status is None or g.status.value == status)
            and (offline is None or (offline == "Active") == (g.offline_config is not None))
        ]
        page, token = paginate(groups, params, _LIST_SPEC)
        return {"FeatureGroupSummaries": [g.summary() for g in page], "NextToken": token}

    def update_feature_group(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group = self._created(str(params["FeatureGroupName"]))
        additions = check_definitions(params.get("FeatureAdditions") or [], group.features)
        now = utcnow()
        if additions:
            group.features = [*group.features, *additions]
            for spec in additions:
                group.metadata[spec.name] = FeatureMetadata(creation_time=now, last_modified_time=now)
        if params.get("OnlineStoreConfig"):
            if not group.online_enabled:
                raise ValidationException(f"Feature group {group.name} has no online store to update.")
            group.online_config = {**(group.online_config or {}), **params["OnlineStoreConfig"]}
        if params.get("ThroughputConfig"):
            group.request = {**group.request, "ThroughputConfig": params["ThroughputConfig"]}
        group.last_modified_time = now
        group.last_update_status = {"Status": "Successful"}
        if additions:
            self._lifecycle.updated(group)
        self.store.changed(group.name)
        return {"FeatureGroupArn": group.arn}

    def delete_feature_group(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group = self.resolve(str(params["FeatureGroupName"]))
        if group.status in (FeatureGroupStatus.CREATING, FeatureGroupStatus.DELETING):
            raise ResourceInUse(f"Feature group {group.name} is in {group.status.value} status and cannot be deleted.")
        group.status = FeatureGroupStatus.DELETING
        self._later(self._finish_delete, group)
        return {}

    def describe_feature_metadata(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group = self.resolve(str(params["FeatureGroupName"]))
        spec = self._feature(group, str(params["FeatureName"]))
        meta = group.metadata.setdefault(spec.name, FeatureMetadata(creation_time=group.creation_time))
        return {
            "FeatureGroupArn": group.arn,
            "FeatureGroupName": group.name,
            "FeatureName": spec.name,
            "FeatureType": spec.type.value,
            "CreationTime": meta.creation_time,
            "LastModifiedTime": meta.last_modified_time,
            "Description": meta.description,
            "Parameters": [{"Key": k, "Value": v} for k, v in meta.parameters.items()],
        }

    def update_feature_metadata(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group = self.resolve(str(params["FeatureGroupName"]))
        spec = self._feature(group, str(params["FeatureName"]))
        meta = group.metadata.setdefault(spec.name, FeatureMetadata(creation_time=group.creation_time))
        if "Description" in params:
            meta.description = params["Description"]
        for key in params.get("ParameterRemovals") or []:
            meta.parameters.pop(key, None)
        for item in params.get("ParameterAdditions") or []:
            meta.parameters[item["Key"]] = item["Value"]
        meta.last_modified_time = utcnow()
        self.store.changed(group.name)
        return {}

    def _created(self, name: str) -> FeatureGroup:
        group = self.resolve(name)
        if group.status is not FeatureGroupStatus.CREATED:
            raise ResourceInUse(f"Feature group {group.name} is in {group.status.value} status.")
        return group

    @staticmethod
    def _feature(group: FeatureGroup, name: str) -> FeatureSpec:
        spec = group.spec(name)
        if spec is None:
            raise ResourceNotFound(f"Resource Not Found: Feature {name} not found in feature group {group.name}.")
        return spec

    def _later(self, step: Callable[[FeatureGroup], None], group: FeatureGroup) -> None:
        timer = threading.Timer(self._transition_seconds, step, (group,))
        timer.daemon = True
        timer.start()

    def _finish_create(self, group: FeatureGroup) -> None:
        try:
            self._lifecycle.created(group)
        except Exception as exc:
            logger.exception("creating the stores of feature group %s failed", group.name)
            group.failure_reason = f"Could not create the stores of feature group {group.name}: {exc}"
            group.status = FeatureGroupStatus.CREATE_FAILED
            self.store.changed(group.name)
            return
        group.status = FeatureGroupStatus.CREATED
        self.store.changed(group.name)

    def _finish_delete(self, group: FeatureGroup) -> None:
        try:
            self._lifecycle.deleted(group)
        except Exception as exc:
            logger.exception("deleting the stores of feature group %s failed", group.name)
            group.failure_reason = f"Could not delete the stores of feature group {group.name}: {exc}"
            group.status = FeatureGroupStatus.DELETE_FAILED
            self.store.changed(group.name)
            return
        self.store.remove(group.name)
        self.tags.pop(group.arn, None)
