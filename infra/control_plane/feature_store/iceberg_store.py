"""The offline store of a feature group with ``TableFormat: Iceberg``: a real Apache Iceberg table.

The table's location is the group's folder (``ResolvedOutputS3Uri`` without its ``/data``): Parquet data files go
under ``data/`` (the same hour folders and files as a Glue group's), Iceberg's metadata JSON, manifest lists and
manifests under ``metadata/`` beside it. Each flush of the group's buffer is one Iceberg commit (an append
snapshot); added features evolve the table's schema. The table is registered in the Glue catalog under the group's
``DataCatalogConfig`` with ``table_type=ICEBERG`` and ``metadata_location``. See docs/feature-store.md#iceberg-groups.
"""

from __future__ import annotations

import logging
import re

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.table import Table

from infra.control_plane.core.aws_services import S3Access, S3Location
from infra.control_plane.core.catalogs.iceberg_catalog import GlueIcebergCatalog

logger = logging.getLogger(__name__)

_METADATA_FILE = re.compile(r"/metadata/(?P<version>\d+)-[0-9a-f-]+\.metadata\.json$")
_COMMIT_ATTEMPTS = 3
# Merge-append: once a snapshot would list 100 manifests they are merged, so planning a scan of a group written every
# few seconds for months reads a bounded number of manifests.
_TABLE_PROPERTIES = {"commit.manifest-merge.enabled": "true"}


def table_location(offline_location: str) -> str:
    """The Iceberg table's location: the group's folder, whose ``data/`` is ``ResolvedOutputS3Uri``."""
    return offline_location.rstrip("/").removesuffix("/data")


class IcebergOfflineTables:
    def __init__(self, catalog: GlueIcebergCatalog, s3: S3Access) -> None:
        self._catalog = catalog
        self._s3 = s3

    def ensure(self, identifier: tuple[str, str], offline_location: str, schema: pa.Schema) -> None:
        """Create the table (or register the newest metadata already in S3, after a restart), and add to its schema
        the columns ``schema`` has and it lacks."""
        table = self._load_or_register(identifier, offline_location)
        if table is None:
            location = table_location(offline_location)
            self._catalog.create_table(identifier, schema, location=location, properties=_TABLE_PROPERTIES)
            logger.info("iceberg table %s.%s created at %s", *identifier, location)
            return
        missing = [name for name in schema.names if name not in table.schema().column_names]
        if missing:
            with table.update_schema() as update:
                update.union_by_name(schema)
            logger.info("iceberg table %s.%s: columns %s added", *identifier, missing)

    def commit(self, identifier: tuple[str, str], data_files: list[str]) -> None:
        """One append snapshot adding ``data_files`` (Parquet objects already written under the table's data/)."""
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            table = self._catalog.load_table(identifier)
            try:
                table.add_files(
                    data_files, snapshot_properties={"sagestack.writer": "offline-store"}, check_duplicate_files=False
                )
                return
            except CommitFailedException:
                if attempt == _COMMIT_ATTEMPTS:
                    raise
                logger.info("iceberg commit to %s.%s raced another writer; trying again", *identifier)

    def _load_or_register(self, identifier: tuple[str, str], offline_location: str) -> Table | None:
        try:
            return self._catalog.load_table(identifier)
        except NoSuchTableError:
            pass
        newest = self._newest_metadata(table_location(offline_location))
        if newest is None:
            return None
        logger.info("iceberg table %s.%s registered again from %s", *identifier, newest)
        return self._catalog.register_table(identifier, newest)

    def _newest_metadata(self, location: str) -> str | None:
        root = S3Location.parse(location)
        found = []
        for key, _ in self._s3.list_keys(root.child("metadata/")):
            match = _METADATA_FILE.search("/" + key)
            if match is not None:
                found.append((int(match.group("version")), key))
        return f"s3://{root.bucket}/{max(found)[1]}" if found else None
