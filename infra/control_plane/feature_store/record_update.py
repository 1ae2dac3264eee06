"""UpdateRecord's rules: which requests are valid, and the record an update makes of the stored one.

As on AWS (docs/feature-store.md#updaterecord): only groups whose online store is ``Standard_V2`` or ``InMemory``;
up to 100 features a call; the record must exist in the online store (not soft-deleted, not expired), else
``ResourceNotFound``; the features not named keep their values; an event time older than the stored one is a
``ConflictException``, an omitted one keeps the stored event time; a ``TtlDuration`` needs an event time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infra.control_plane.core.errors import ConflictException, ResourceNotFound, RuntimeValidationError
from infra.control_plane.feature_store.feature_groups import FeatureGroup
from infra.control_plane.feature_store.feature_types import BadFeatureValue
from infra.control_plane.feature_store.online_store import OnlineRecord

MAX_UPDATE_FEATURES = 100
UPDATABLE_STORAGE_TYPES = ("Standard_V2", "InMemory")


class RecordConflict(ConflictException):
    """The runtime's ConflictException (HTTP 409 in its model)."""

    status = 409


def check_update(group: FeatureGroup, params: Mapping[str, Any]) -> str:
    """The request's record identifier, after the checks that need no stored record."""
    storage = str((group.online_config or {}).get("StorageType") or "Standard")
    if not group.online_enabled or storage not in UPDATABLE_STORAGE_TYPES:
        raise RuntimeValidationError(
            f"UpdateRecord is available only for feature groups with an online store of StorageType "
            f"{' or '.join(UPDATABLE_STORAGE_TYPES)}; feature group {group.name} has "
            f"{storage if group.online_enabled else 'no online store'}."
        )
    features: Sequence[Mapping[str, Any]] = params["Features"]
    if len(features) > MAX_UPDATE_FEATURES:
        raise RuntimeValidationError(
            f"1 validation error detected: Value at 'features' failed to satisfy constraint: Member must have "
            f"length less than or equal to {MAX_UPDATE_FEATURES}"
        )
    record_id = str(params["RecordIdentifierValueAsString"])
    try:
        group.record_identifier.parse(record_id)
    except BadFeatureValue as exc:
        raise RuntimeValidationError(str(exc)) from exc
    names = [str(f["FeatureName"]) for f in features]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RuntimeValidationError(f"The feature {repeated[0]} appears more than once in the record.")
    for feature in features:
        name = str(feature["FeatureName"])
        if group.spec(name) is None:
            raise RuntimeValidationError(f"The feature {name} does not exist in feature group {group.name}.")
        if name == group.record_identifier.name and feature.get("ValueAsString") != record_id:
            raise RuntimeValidationError(
                f"The record identifier {name} of a record cannot be changed by UpdateRecord; its value must be "
                f"RecordIdentifierValueAsString ({record_id})."
            )
    if params.get("TtlDuration") and group.event_time.name not in names:
        raise RuntimeValidationError(f"A TtlDuration needs the event time feature {group.event_time.name} in Features.")
    return record_id


def record_missing(group: FeatureGroup, record_id: str) -> ResourceNotFound:
    return ResourceNotFound(
        f"Resource Not Found: Record {record_id} not found in feature group {group.name}; create it with PutRecord."
    )


def merged_record(
    group: FeatureGroup, stored: OnlineRecord, record_id: str, features: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The stored record with ``features`` replacing or adding values (in the group's feature order)."""
    values = {str(f["FeatureName"]): dict(f) for f in stored.features}
    values.update({str(f["FeatureName"]): dict(f) for f in features})
    values.setdefault(group.record_identifier.name, {"FeatureName": group.record_identifier.name})
    values[group.record_identifier.name]["ValueAsString"] = record_id
    return [values[s.name] for s in group.features if s.name in values]


def check_event_time(stored: OnlineRecord, new_event_time: float) -> None:
    if new_event_time < stored.event_time:
        raise RecordConflict(
            f"The EventTime {new_event_time} of the update is older than the record's current EventTime "
            f"{stored.event_time}."
        )
