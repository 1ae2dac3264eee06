"""CreateFeatureGroup / UpdateFeatureGroup: checks beyond the model's shapes, and the resolved offline store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from infra.control_plane.core.aws_services import S3AccessError, S3Location
from infra.control_plane.core.errors import ResourceLimitExceeded, ValidationException
from infra.control_plane.feature_store.feature_types import FeatureSpec, FeatureType

# Columns the offline store adds to every record (docs/feature-store.md, "Offline store layout").
RESERVED_FEATURE_NAMES = frozenset({"is_deleted", "write_time", "api_invocation_time"})
MAX_FEATURES = 2500
DEFAULT_DATABASE = "sagemaker_featurestore"
DEFAULT_CATALOG = "AwsDataCatalog"
_TTL_SECONDS = {"Seconds": 1, "Minutes": 60, "Hours": 3600, "Days": 86400, "Weeks": 604800}


def check_create(params: Mapping[str, Any], bucket_exists: Callable[[str], bool]) -> list[FeatureSpec]:
    """The feature specs of a valid CreateFeatureGroup request; raises ``ValidationException``."""
    specs = check_definitions(params["FeatureDefinitions"], [])
    by_name = {s.name: s for s in specs}
    record_id = by_name.get(params["RecordIdentifierFeatureName"])
    if record_id is None:
        raise ValidationException(
            f"The RecordIdentifierFeatureName {params['RecordIdentifierFeatureName']} is not defined in "
            "FeatureDefinitions."
        )
    if record_id.type not in (FeatureType.STRING, FeatureType.INTEGRAL) or record_id.collection:
        raise ValidationException(
            f"The RecordIdentifierFeatureName {record_id.name} must be of type String or Integral."
        )
    event_time = by_name.get(params["EventTimeFeatureName"])
    if event_time is None:
        raise ValidationException(
            f"The EventTimeFeatureName {params['EventTimeFeatureName']} is not defined in FeatureDefinitions."
        )
    if event_time.type not in (FeatureType.STRING, FeatureType.FRACTIONAL) or event_time.collection:
        raise ValidationException(f"The EventTimeFeatureName {event_time.name} must be of type String or Fractional.")
    _check_stores(params, bucket_exists)
    return specs


def check_definitions(definitions: Sequence[Mapping[str, Any]], existing: Sequence[FeatureSpec]) -> list[FeatureSpec]:
    """Feature names are unique (case-insensitively), not reserved, and at most ``MAX_FEATURES``."""
    seen = {s.name.lower() for s in existing}
    specs = []
    for definition in definitions:
        spec = FeatureSpec.from_api(definition)
        if spec.name.lower() in RESERVED_FEATURE_NAMES:
            reserved = ", ".join(sorted(RESERVED_FEATURE_NAMES))
            raise ValidationException(f"The feature name {spec.name} is reserved; reserved names are: {reserved}.")
        if spec.name.lower() in seen:
            raise ValidationException(f"The feature name {spec.name} is defined more than once.")
        seen.add(spec.name.lower())
        specs.append(spec)
    if len(seen) > MAX_FEATURES:
        raise ResourceLimitExceeded(f"A feature group can have at most {MAX_FEATURES} features; {len(seen)} given.")
    return specs


def _check_stores(params: Mapping[str, Any], bucket_exists: Callable[[str], bool]) -> None:
    online = params.get("OnlineStoreConfig") or {}
    offline = params.get("OfflineStoreConfig")
    if not online.get("EnableOnlineStore") and offline is None:
        raise ValidationException(
            "At least one of OnlineStoreConfig (enabled) and OfflineStoreConfig must be specified."
        )
    if offline is None:
        return
    if not params.get("RoleArn"):
        raise ValidationException("RoleArn is required when OfflineStoreConfig is specified.")
    uri = str(offline["S3StorageConfig"]["S3Uri"])
    try:
        location = S3Location.parse(uri)
    except S3AccessError as exc:
        raise ValidationException(f"The S3Uri {uri} is not a valid S3 URI.") from exc
    if not bucket_exists(location.bucket):
        raise ValidationException(f"Cannot access S3 bucket {location.bucket}: the bucket does not exist.")
    if offline.get("TableFormat") == "Iceberg" and offline.get("DisableGlueTableCreation"):
        # The stack commits an Iceberg group's snapshots through its Glue table (docs/feature-store.md#iceberg-groups).
        raise ValidationException("DisableGlueTableCreation cannot be set for an offline store of TableFormat Iceberg.")


def resolve_offline_config(
    offline: Mapping[str, Any], name: str, created: datetime, account_id: str, region: str
) -> dict[str, Any]:
    """The OfflineStoreConfig as Describe returns it: resolved S3 URI and the Glue table's names."""
    stamp = int(created.timestamp())
    s3_config = dict(offline["S3StorageConfig"])
    base = str(s3_config["S3Uri"]).rstrip("/")
    s3_config["ResolvedOutputS3Uri"] = f"{base}/{account_id}/sagemaker/{region}/offline-store/{name}-{stamp}/data"
    catalog = dict(
        offline.get("DataCatalogConfig")
        or {
            "TableName": f"{name}_{stamp}".replace("-", "_").lower(),
            "Catalog": DEFAULT_CATALOG,
            "Database": DEFAULT_DATABASE,
        }
    )
    resolved: dict[str, Any] = {
        "S3StorageConfig": s3_config,
        "DisableGlueTableCreation": bool(offline.get("DisableGlueTableCreation", False)),
        "DataCatalogConfig": catalog,
        "TableFormat": offline.get("TableFormat") or "Glue",
    }
    return resolved


def ttl_seconds(ttl: Mapping[str, Any] | None) -> float | None:
    if not ttl:
        return None
    return float(ttl["Value"]) * _TTL_SECONDS[str(ttl["Unit"])]
