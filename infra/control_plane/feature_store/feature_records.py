"""The Feature Store runtime's operations: PutRecord, GetRecord, BatchGetRecord, DeleteRecord, BatchWriteRecord,
ListRecords, UpdateRecord, and the stack's bulk ingest.

A record is checked against its group before anything is stored: identifier and event time present, every feature
defined, every value of its feature's type, the event time not further in the future than ``FUTURE_TOLERANCE``.
Then it goes to the online store (kept only when newest) and to the offline store's buffer. See
docs/feature-store.md.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from infra.control_plane.core.errors import ResourceNotFound, RuntimeValidationError, ServiceError
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.feature_store.feature_group_requests import ttl_seconds
from infra.control_plane.feature_store.feature_groups import FeatureGroup, FeatureGroups, FeatureGroupStatus
from infra.control_plane.feature_store.feature_types import BadFeatureValue, FeatureSpec, parse_event_time
from infra.control_plane.feature_store.offline_store import OfflineRow, OfflineStoreWriter
from infra.control_plane.feature_store.online_store import OnlineRecord, OnlineStore, OnlineWrite
from infra.control_plane.feature_store.record_ingest import IngestRequest
from infra.control_plane.feature_store.record_update import (
    check_event_time,
    check_update,
    merged_record,
    record_missing,
)

# How far in the future an event time may lie (clock skew between writers); see docs/feature-store.md.
FUTURE_TOLERANCE = timedelta(minutes=5)
ONLINE, OFFLINE = "OnlineStore", "OfflineStore"


class _Checked(NamedTuple):  # a tuple: one is made per record written, and a frozen dataclass costs more
    record_id: str
    event_time: datetime
    typed: dict[str, Any]
    record: list[dict[str, Any]]


class FeatureRecords:
    def __init__(
        self,
        groups: FeatureGroups,
        online: OnlineStore,
        offline: OfflineStoreWriter,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._groups = groups
        self._online = online
        self._offline = offline
        self._clock = clock

    def put_record(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group = self._writable(str(params["FeatureGroupName"]))
        self._write(group, [params["Record"]], params.get("TargetStores"), params.get("TtlDuration"))
        return {}

    def batch_write_record(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Each entry is checked on its own (a bad one is reported in Errors); the good ones are written together."""
        errors, online, offline = [], [], []
        now = self._clock()
        for entry in params["Entries"]:
            try:
                group = self._writable(str(entry["FeatureGroupName"]))
                ttl = entry.get("TtlDuration") or params.get("TtlDuration")
                targets = _targets(group, entry.get("TargetStores"))
                checked = self._check(group, entry["Record"], now)
            except ServiceError as exc:
                errors.append({"Entry": entry, "ErrorCode": exc.code, "ErrorMessage": exc.message})
                continue
            if ONLINE in targets:
                online.append(_online_write(group, checked, ttl_seconds(ttl) if ttl else group.ttl_seconds))
            if OFFLINE in targets:
                offline.append((group, OfflineRow(checked.typed, checked.event_time, now)))
        if online:
            self._online.put_many(online)
        for group, row in offline:
            self._offline.append(group, [row])
        return {"Errors": errors, "UnprocessedEntries": []}

    def ingest_records(self, request: IngestRequest) -> dict[str, Any]:
        """The stack's bulk path (docs/feature-store.md#bulk-ingestion): rows of one group, each checked exactly as
        PutRecord checks a record; the bad ones are reported by index, the good ones written together."""
        group = self._writable(request.feature_group_name)
        targets = _targets(group, request.target_stores)
        specs = []
        for name in request.feature_names:  # looked up once: every row names the same features
            spec = group.spec(name)
            if spec is None:
                raise RuntimeValidationError(f"The feature {name} does not exist in feature group {group.name}.")
            specs.append(spec)
        keys, now = _Keys.of(group), self._clock()
        errors: list[dict[str, Any]] = []
        accepted: list[_Checked] = []
        for index, row in enumerate(request.records):
            items = [
                (spec, value, None) if type(value) is str else (spec, None, value)
                for spec, value in zip(specs, row, strict=True)
                if value is not None
            ]
            try:
                accepted.append(_check_items(keys, items, now))
            except ServiceError as exc:
                errors.append({"Index": index, "ErrorCode": exc.code, "ErrorMessage": exc.message})
        if ONLINE in targets and accepted:
            ttl = group.ttl_seconds
            self._online.put_many([_online_write(group, checked, ttl) for checked in accepted])
        if OFFLINE in targets and accepted:
            self._offline.append(group, [OfflineRow(c.typed, c.event_time, now) for c in accepted])
        return {"Errors": errors}

    def get_record(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group = self._readable(str(params["FeatureGroupName"]))
        names = _selection(group, params.get("FeatureNames"))
        stored = self._live(group, str(params["RecordIdentifierValueAsString"]))
        if stored is None:
            return {}
        return _answer(stored, names, params.get("ExpirationTimeResponse") == "Enabled")

    def batch_get_record(self, params: Mapping[str, Any]) -> dict[str, Any]:
        records, errors = [], []
        expiry = params.get("ExpirationTimeResponse") == "Enabled"
        for identifier in params["Identifiers"]:
            name = str(identifier["FeatureGroupName"])
            try:
                group = self._readable(name)
                names = _selection(group, identifier.get("FeatureNames"))
            except ServiceError as exc:
                errors += [_batch_error(name, rid, exc) for rid in identifier["RecordIdentifiersValueAsString"]]
                continue
            for record_id in identifier["RecordIdentifiersValueAsString"]:
                stored = self._live(group, str(record_id))
                if stored is not None:
                    answer = _answer(stored, names, expiry)
                    records.append({"FeatureGroupName": name, "RecordIdentifierValueAsString": record_id, **answer})
        return {"Records": records, "Errors": errors, "UnprocessedIdentifiers": []}

    def list_records(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The identifiers of the online store's records, in order, ``MaxResults`` (default 100) a page."""
        group = self._readable(str(params["FeatureGroupName"]))
        limit = int(params.get("MaxResults") or 100)
        after = _after_token(params.get("NextToken"))
        with_deleted = bool(params.get("IncludeSoftDeletedRecords"))
        found = self._online.list_ids(group.name, after, limit + 1, with_deleted, self._clock().timestamp())
        page = found[:limit]
        answer: dict[str, Any] = {"RecordIdentifiers": page}
        if len(found) > limit:
            answer["NextToken"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
        return answer

    def update_record(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The named features of an existing online record change, the others stay (``record_update.py``); the
        whole updated record goes to the targeted stores."""
        group = self._writable(str(params["FeatureGroupName"]))
        record_id = check_update(group, params)
        targets = _targets(group, params.get("TargetStores"))
        stored = self._live(group, record_id)
        if stored is None:
            raise record_missing(group, record_id)
        now = self._clock()
        checked = _check_record(_Keys.of(group), merged_record(group, stored, record_id, params["Features"]), now)
        stamp, expires = checked.event_time.timestamp(), stored.expires_at
        if any(f["FeatureName"] == group.event_time.name for f in params["Features"]):
            check_event_time(stored, stamp)
            ttl = params.get("TtlDuration")
            ttl_s = ttl_seconds(ttl) if ttl else group.ttl_seconds
            expires = stamp + ttl_s if ttl_s else None
        if ONLINE in targets:
            self._online.put_many([OnlineWrite(group.name, record_id, stamp, expires, checked.record)])
        if OFFLINE in targets:
            self._offline.append(group, [OfflineRow(checked.typed, checked.event_time, now)])
        return {}

    def delete_record(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group = self._writable(str(params["FeatureGroupName"]))
        record_id = str(params["RecordIdentifierValueAsString"])
        try:
            event_time = parse_event_time(group.event_time, str(params["EventTime"]))
            typed_id = group.record_identifier.parse(record_id)
            typed_time = group.event_time.parse(str(params["EventTime"]))
        except BadFeatureValue as exc:
            raise RuntimeValidationError(str(exc)) from exc
        targets = _targets(group, params.get("TargetStores"))
        hard = params.get("DeletionMode") == "HardDelete"
        if ONLINE in targets:
            self._online.delete(group.name, record_id, event_time.timestamp(), hard)
        if OFFLINE in targets:
            values = {group.record_identifier.name: typed_id, group.event_time.name: typed_time}
            self._offline.append(group, [OfflineRow(values, event_time, self._clock(), is_deleted=True)])
        return {}

    def _writable(self, name: str) -> FeatureGroup:
        group = self._groups.resolve(name)
        if group.status is not FeatureGroupStatus.CREATED:
            raise RuntimeValidationError(
                f"Feature group {group.name} is in {group.status.value} status; records can be written only to a "
                "feature group in Created status."
            )
        return group

    def _readable(self, name: str) -> FeatureGroup:
        group = self._groups.resolve(name)
        if not group.online_enabled:
            raise RuntimeValidationError(f"Feature group {group.name} does not have an online store.")
        if group.status is FeatureGroupStatus.DELETING:
            raise ResourceNotFound(f"Resource Not Found: Feature group {group.name} is being deleted.")
        return group

    def _live(self, group: FeatureGroup, record_id: str) -> OnlineRecord | None:
        stored = self._online.get(group.name, record_id)
        if stored is None or stored.deleted:
            return None
        if stored.expires_at is not None and stored.expires_at <= self._clock().timestamp():
            return None
        return stored

    def _write(
        self,
        group: FeatureGroup,
        records: Sequence[Sequence[Mapping[str, Any]]],
        target_stores: Sequence[str] | None,
        ttl: Mapping[str, Any] | None,
    ) -> None:
        targets = _targets(group, target_stores)
        now = self._clock()
        keys = _Keys.of(group)
        checked = [_check_record(keys, record, now) for record in records]
        if ONLINE in targets:
            ttl_s = ttl_seconds(ttl) if ttl else group.ttl_seconds
            self._online.put_many([_online_write(group, c, ttl_s) for c in checked])
        if OFFLINE in targets:
            self._offline.append(group, [OfflineRow(c.typed, c.event_time, now) for c in checked])

    def _check(self, group: FeatureGroup, record: Sequence[Mapping[str, Any]], now: datetime) -> _Checked:
        return _check_record(_Keys.of(group), record, now)


@dataclass(frozen=True)
class _Keys:
    """What checking a record needs of its group, looked up once per request rather than per record."""

    group: FeatureGroup
    identifier: FeatureSpec
    event_time: FeatureSpec

    @classmethod
    def of(cls, group: FeatureGroup) -> _Keys:
        return cls(group, group.record_identifier, group.event_time)


Item = tuple[FeatureSpec, Any, Any]  # a feature's spec, its ValueAsString and its ValueAsStringList


def _check_record(keys: _Keys, record: Sequence[Mapping[str, Any]], now: datetime) -> _Checked:
    """A record of the API (``FeatureName`` / ``ValueAsString`` dicts) checked against its group."""
    items: list[Item] = []
    for value in record:
        name = str(value["FeatureName"])
        spec = keys.group.spec(name)
        if spec is None:
            raise RuntimeValidationError(f"The feature {name} does not exist in feature group {keys.group.name}.")
        items.append((spec, value.get("ValueAsString"), value.get("ValueAsStringList")))
    return _check_items(keys, items, now)


def _check_items(keys: _Keys, items: Sequence[Item], now: datetime) -> _Checked:
    """Every feature once, every value of its type, identifier and event time present, the event time not beyond
    ``FUTURE_TOLERANCE``; raises ``RuntimeValidationError``. What PutRecord, BatchWriteRecord and bulk ingest share."""
    typed: dict[str, Any] = {}
    clean: list[dict[str, Any]] = []
    for spec, scalar, many in items:
        if spec.name in typed:
            raise RuntimeValidationError(f"The feature {spec.name} appears more than once in the record.")
        typed[spec.name], entry = _typed_value(spec, scalar, many)
        clean.append(entry)
    identifier, event = typed.get(keys.identifier.name), typed.get(keys.event_time.name)
    for required, present in ((keys.identifier, identifier), (keys.event_time, event)):
        if present is None:
            role = "record identifier" if required is keys.identifier else "event time"
            raise RuntimeValidationError(f"The record is missing the {role} feature {required.name}.")
    event_time = _event_time(keys.event_time, event)
    if event_time > now + FUTURE_TOLERANCE:
        raise RuntimeValidationError(
            f"The event time {event_time.isoformat()} of the record is in the future: it may be at most "
            f"{int(FUTURE_TOLERANCE.total_seconds())} seconds after the current time {now.isoformat()}."
        )
    return _Checked(str(identifier), event_time, typed, clean)


def _event_time(spec: FeatureSpec, typed: Any) -> datetime:
    """The event time of an already typed value (a Fractional's float, a String's text)."""
    try:
        if isinstance(typed, float):
            return datetime.fromtimestamp(typed, tz=UTC)
        return parse_event_time(spec, str(typed))
    except (OverflowError, OSError, ValueError) as exc:
        if isinstance(exc, BadFeatureValue):
            raise RuntimeValidationError(str(exc)) from exc
        raise RuntimeValidationError(f"Event time '{typed}' of feature {spec.name} is out of range.") from exc


def _typed_value(spec: FeatureSpec, scalar: Any, many: Any) -> tuple[Any, dict[str, Any]]:
    try:
        if spec.collection:
            if many is None:
                raise BadFeatureValue(
                    f"Feature {spec.name} is a {spec.collection}: give its value as ValueAsStringList."
                )
            return spec.parse_list([str(v) for v in many]), {"FeatureName": spec.name, "ValueAsStringList": list(many)}
        if scalar is None:
            raise BadFeatureValue(f"Feature {spec.name} is not a collection: give its value as ValueAsString.")
        return spec.parse(str(scalar)), {"FeatureName": spec.name, "ValueAsString": str(scalar)}
    except BadFeatureValue as exc:
        raise RuntimeValidationError(str(exc)) from exc


def _after_token(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeError) as exc:
        raise RuntimeValidationError(f"The NextToken {token[:64]!r} is not valid.") from exc


def _targets(group: FeatureGroup, requested: Sequence[str] | None) -> set[str]:
    available = {ONLINE} if group.online_enabled else set()
    if group.offline_config is not None:
        available.add(OFFLINE)
    if not requested:
        return available
    missing = set(requested) - available
    if missing:
        raise RuntimeValidationError(
            f"Feature group {group.name} has no {' or '.join(sorted(missing))}; target stores must be among "
            f"{sorted(available)}."
        )
    return set(requested)


def _online_write(group: FeatureGroup, checked: _Checked, ttl: float | None) -> OnlineWrite:
    stamp = checked.event_time.timestamp()
    return OnlineWrite(group.name, checked.record_id, stamp, stamp + ttl if ttl else None, checked.record)


def _selection(group: FeatureGroup, names: Sequence[str] | None) -> list[str] | None:
    if not names:
        return None
    for name in names:
        if group.spec(name) is None:
            raise RuntimeValidationError(f"The feature {name} does not exist in feature group {group.name}.")
    return list(names)


def _answer(stored: OnlineRecord, names: list[str] | None, expiry: bool) -> dict[str, Any]:
    record = stored.features if names is None else [f for f in stored.features if f["FeatureName"] in names]
    answer: dict[str, Any] = {"Record": record or None}
    if expiry and stored.expires_at is not None:
        answer["ExpiresAt"] = (
            datetime.fromtimestamp(stored.expires_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        )
    return answer


def _batch_error(name: str, record_id: str, exc: ServiceError) -> dict[str, Any]:
    return {
        "FeatureGroupName": name,
        "RecordIdentifierValueAsString": record_id,
        "ErrorCode": exc.code,
        "ErrorMessage": exc.message,
    }
