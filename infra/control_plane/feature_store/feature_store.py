"""One account/region's Feature Store: feature groups, the runtime's records and the two stores, wired together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.control_plane.core.aws_services import S3Access
from infra.control_plane.core.catalogs.glue_catalog import GlueAccess
from infra.control_plane.core.catalogs.iceberg_catalog import GlueIcebergCatalog
from infra.control_plane.feature_store.feature_groups import FeatureGroup, FeatureGroups
from infra.control_plane.feature_store.feature_records import FeatureRecords
from infra.control_plane.feature_store.iceberg_store import IcebergOfflineTables
from infra.control_plane.feature_store.offline_store import OfflineStoreWriter
from infra.control_plane.feature_store.online_store import OnlineStore, SqliteOnlineStore


class _StoreLifecycle:
    """Creates a group's Glue table, keeps it in step with added features, and empties its online store on delete."""

    def __init__(self, online: OnlineStore, offline: OfflineStoreWriter) -> None:
        self._online = online
        self._offline = offline

    def created(self, group: FeatureGroup) -> None:
        self._offline.register(group)

    def updated(self, group: FeatureGroup) -> None:
        self._offline.flush(group.name)  # buffered records keep the schema they were written with
        self._offline.register(group)

    def deleted(self, group: FeatureGroup) -> None:
        self._offline.flush(group.name)  # records accepted before the delete still reach the offline store
        self._online.drop_group(group.name)


@dataclass
class FeatureStore:
    feature_groups: FeatureGroups
    feature_records: FeatureRecords
    online: OnlineStore
    offline: OfflineStoreWriter

    def close(self) -> None:
        self.offline.close()
        self.online.close()


def build_feature_store(
    account_id: str, region: str, s3: S3Access, data_dir: Path, flush_seconds: float = 5.0
) -> FeatureStore:
    online = SqliteOnlineStore(data_dir / "feature-store" / account_id / region / "online-store.sqlite")
    glue = GlueAccess(account_id, region)
    iceberg = IcebergOfflineTables(GlueIcebergCatalog(glue, s3), s3)
    offline = OfflineStoreWriter(s3, glue, iceberg, flush_seconds=flush_seconds)
    groups = FeatureGroups(account_id, region, _StoreLifecycle(online, offline), s3.bucket_exists)
    return FeatureStore(groups, FeatureRecords(groups, online, offline), online, offline)
