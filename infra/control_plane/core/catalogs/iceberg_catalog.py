"""Apache Iceberg tables kept in the embedded Glue Data Catalog, their files in the embedded S3 (in process).

An Iceberg table here is what Athena and Glue make of one: metadata JSON, manifest lists and manifests under
``<location>/metadata/``, Parquet data files under ``<location>/data/``, and a Glue table whose parameters carry
``table_type=ICEBERG`` and ``metadata_location`` (and ``previous_metadata_location`` after the first commit), written
with pyiceberg's own Glue table layout so pyiceberg's ``GlueCatalog`` (what a Spark driver or a user commits
through, over the stack's endpoint) and this catalog read and commit the same tables. See
docs/feature-store.md#iceberg-groups.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

from pyiceberg.catalog import MetastoreCatalog, PropertiesUpdateSummary
from pyiceberg.catalog.glue import _construct_table_input
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.io import FileIO, InputFile, InputStream, OutputFile, OutputStream
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import CommitTableResponse, Table
from pyiceberg.table.update import TableRequirement, TableUpdate
from pyiceberg.typedef import EMPTY_DICT, Identifier, Properties

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.core.catalogs.glue_catalog import GlueAccess

logger = logging.getLogger(__name__)

METADATA_LOCATION = "metadata_location"


def _response(metadata: Any, location: str) -> CommitTableResponse:
    return CommitTableResponse(metadata=metadata, metadata_location=location)  # type: ignore[call-arg]


class _S3InputFile(InputFile):
    def __init__(self, location: str, s3: S3Access) -> None:
        super().__init__(location)
        self._s3 = s3

    def __len__(self) -> int:
        return len(self._read())

    def exists(self) -> bool:
        return self._s3.object_exists(S3Location.parse(self.location))

    def open(self, seekable: bool = True) -> InputStream:
        return io.BytesIO(self._read())

    def _read(self) -> bytes:
        try:
            return self._s3.get_bytes(S3Location.parse(self.location))
        except S3AccessError as exc:
            raise FileNotFoundError(f"Cannot open file, does not exist: {self.location}") from exc


class _S3OutputStream(io.BytesIO):
    """Buffers what is written; the object is put when the stream is closed."""

    def __init__(self, location: S3Location, s3: S3Access) -> None:
        super().__init__()
        self._location = location
        self._s3 = s3

    def close(self) -> None:
        if not self.closed:
            self._s3.put_bytes(self._location, self.getvalue())
        super().close()


class _S3OutputFile(OutputFile):
    def __init__(self, location: str, s3: S3Access) -> None:
        super().__init__(location)
        self._s3 = s3

    def __len__(self) -> int:
        return len(self._s3.get_bytes(S3Location.parse(self.location)))

    def exists(self) -> bool:
        return self._s3.object_exists(S3Location.parse(self.location))

    def to_input_file(self) -> InputFile:
        return _S3InputFile(self.location, self._s3)

    def create(self, overwrite: bool = False) -> OutputStream:
        if not overwrite and self.exists():
            raise FileExistsError(f"Cannot create file, already exists: {self.location}")
        return _S3OutputStream(S3Location.parse(self.location), self._s3)


class S3AccessFileIO(FileIO):
    """pyiceberg's file access over the embedded S3 backend (no HTTP, no credentials)."""

    def __init__(self, s3: S3Access) -> None:
        super().__init__(properties={})
        self._s3 = s3

    def new_input(self, location: str) -> InputFile:
        return _S3InputFile(location, self._s3)

    def new_output(self, location: str) -> OutputFile:
        return _S3OutputFile(location, self._s3)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        path = location if isinstance(location, str) else location.location
        self._s3.delete_object(S3Location.parse(path))


class GlueIcebergCatalog(MetastoreCatalog):
    """The Iceberg tables of one account/region's Glue catalog. Commits are serialized here and checked against the
    table's current metadata (pyiceberg's requirements), so a commit made from a stale table fails instead of losing
    another writer's snapshot."""

    def __init__(self, glue: GlueAccess, s3: S3Access) -> None:
        super().__init__("awsdatacatalog")
        self._glue = glue
        self._io = S3AccessFileIO(s3)
        self._commit_lock = threading.RLock()

    def _load_file_io(self, properties: Properties = EMPTY_DICT, location: str | None = None) -> FileIO:
        return self._io

    def create_table(  # type: ignore[override]
        self, identifier: str | Identifier, schema: Any, location: str | None = None, **kwargs: Any
    ) -> Table:
        staged = self._create_staged_table(identifier, schema, location, **kwargs)
        database, name = self.identifier_to_database_and_table(identifier)
        with self._commit_lock:
            self._write_metadata(staged.metadata, staged.io, staged.metadata_location)
            self._put_glue(database, name, staged.metadata_location, staged.metadata, None)
        return self.load_table(identifier)

    def register_table(self, identifier: str | Identifier, metadata_location: str, overwrite: bool = False) -> Table:
        database, name = self.identifier_to_database_and_table(identifier)
        metadata = FromInputFile.table_metadata(self._io.new_input(metadata_location))
        with self._commit_lock:
            current = self._glue.raw_table(database, name)
            if current is not None and not overwrite:
                raise ValueError(f"Table {database}.{name} already exists")
            self._put_glue(database, name, metadata_location, metadata, None)
        return self.load_table(identifier)

    def load_table(self, identifier: str | Identifier) -> Table:
        database, name = self.identifier_to_database_and_table(identifier, NoSuchTableError)
        raw = self._glue.raw_table(database, name)
        parameters = (raw or {}).get("Parameters") or {}
        if raw is None or str(parameters.get("table_type", "")).upper() != "ICEBERG":
            raise NoSuchTableError(f"Iceberg table does not exist: {database}.{name}")
        location = str(parameters[METADATA_LOCATION])
        metadata = FromInputFile.table_metadata(self._io.new_input(location))
        return Table((database, name), metadata, location, self._io, self)

    def commit_table(
        self, table: Table, requirements: tuple[TableRequirement, ...], updates: tuple[TableUpdate, ...]
    ) -> CommitTableResponse:
        database, name = self.identifier_to_database_and_table(table.name(), NoSuchTableError)
        with self._commit_lock:
            try:
                current: Table | None = self.load_table((database, name))
            except NoSuchTableError:
                current = None
            staged = self._update_and_stage_table(current, (database, name), requirements, updates)
            if current is not None and staged.metadata == current.metadata:
                return _response(current.metadata, current.metadata_location)
            self._write_metadata(staged.metadata, staged.io, staged.metadata_location)
            previous = current.metadata_location if current is not None else None
            self._put_glue(database, name, staged.metadata_location, staged.metadata, previous)
        logger.debug("iceberg commit %s.%s -> %s", database, name, staged.metadata_location)
        return _response(staged.metadata, staged.metadata_location)

    def drop_table(self, identifier: str | Identifier) -> None:
        database, name = self.identifier_to_database_and_table(identifier, NoSuchTableError)
        if not self._glue.drop_table(database, name):
            raise NoSuchTableError(f"Table does not exist: {database}.{name}")

    def _put_glue(self, database: str, name: str, location: str, metadata: Any, previous: str | None) -> None:
        current = self._glue.raw_table(database, name)
        table_input = _construct_table_input(name, location, metadata.properties, metadata, current, previous)
        self._glue.put_table_input(database, dict(table_input))

    # The stack keeps only feature groups' tables here: namespaces, views and renames are not offered.
    def _unsupported(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"{what} is not offered by the stack's Iceberg catalog (feature-group tables).")

    def rename_table(self, from_identifier: str | Identifier, to_identifier: str | Identifier) -> Table:
        raise self._unsupported("rename_table")

    def create_namespace(self, namespace: str | Identifier, properties: Properties = EMPTY_DICT) -> None:
        self._glue.ensure_database(self.identifier_to_tuple(namespace)[0])

    def drop_namespace(self, namespace: str | Identifier) -> None:
        raise self._unsupported("drop_namespace")

    def list_tables(self, namespace: str | Identifier) -> list[Identifier]:
        raise self._unsupported("list_tables")

    def list_namespaces(self, namespace: str | Identifier = ()) -> list[Identifier]:
        raise self._unsupported("list_namespaces")

    def load_namespace_properties(self, namespace: str | Identifier) -> Properties:
        raise self._unsupported("load_namespace_properties")

    def update_namespace_properties(
        self, namespace: str | Identifier, removals: set[str] | None = None, updates: Properties = EMPTY_DICT
    ) -> PropertiesUpdateSummary:
        raise self._unsupported("update_namespace_properties")

    def list_views(self, namespace: str | Identifier) -> list[Identifier]:
        return []

    def view_exists(self, identifier: str | Identifier) -> bool:
        return False

    def load_view(self, identifier: str | Identifier) -> Any:
        raise self._unsupported("load_view")

    def register_view(self, identifier: str | Identifier, metadata_location: str) -> Any:
        raise self._unsupported("register_view")

    def drop_view(self, identifier: str | Identifier) -> None:
        raise self._unsupported("drop_view")
