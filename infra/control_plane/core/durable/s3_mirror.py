"""moto's S3 kept across restarts: object bodies as files under ``<data dir>/s3``, their index in the database.

moto 5.2.5 has no storage hook (docs/decisions.md, "A durable stack"), so the mirror reads its S3 backend through
the public model (``list_buckets``, ``list_objects``, a key's ``etag``, ``metadata`` and ``value``) every few tenths
of a second and at stop, writes what changed, and refills the backend through ``create_bucket``/``put_object`` at
start. An object's file is written to a temporary name and renamed into place before its row is committed, and a
replaced file is removed only after the new row is, so a kill -9 at any moment leaves every indexed object whole;
files no row names (a write cut short) are removed at the next start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from moto.backends import get_backend

from infra.control_plane.core.aws_services import locked_etag
from infra.control_plane.core.durable.periodic_writer import PeriodicWriter
from infra.control_plane.core.durable.state_database import StateDatabase

logger = logging.getLogger(__name__)

_PARTITION = "aws"


class S3Mirror:
    def __init__(self, db: StateDatabase, root: Path, sync_seconds: float = 1.0) -> None:
        self._db = db
        self._root = root
        self._sync_seconds = sync_seconds
        self._known: dict[tuple[str, str, str], tuple[str, str]] = {}  # (account, bucket, key) -> (etag, file)
        self._buckets: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._writer: PeriodicWriter | None = None

    # --- start ---------------------------------------------------------------------------------------------

    def restore(self) -> int:
        """Put every indexed bucket and object back into moto; remove files no row names. The objects restored."""
        self._root.mkdir(parents=True, exist_ok=True)
        s3 = get_backend("s3")
        for account, bucket, region in self._db.query("SELECT account, bucket, region FROM s3_buckets"):
            backend = s3[str(account)][_PARTITION]
            if str(bucket) not in {b.name for b in backend.list_buckets(None, None, None)}:
                backend.create_bucket(str(bucket), str(region))
            self._buckets.add((str(account), str(bucket)))
        restored = 0
        rows = self._db.query("SELECT account, bucket, key, file, etag, attributes FROM s3_objects")
        for account, bucket, key, file, etag, attributes in rows:
            path = self._root / str(file)
            try:
                body = path.read_bytes()
            except OSError:
                logger.error("s3://%s/%s: its file %s is missing; the object is not restored", bucket, key, path)
                continue
            fake = s3[str(account)][_PARTITION].put_object(str(bucket), str(key), body)
            fake.set_metadata(json.loads(str(attributes)).get("metadata") or {}, replace=True)
            self._known[(str(account), str(bucket), str(key))] = (str(etag), str(file))
            restored += 1
        self._remove_unindexed()
        logger.info("restored %d S3 objects in %d buckets", restored, len(self._buckets))
        return restored

    def _remove_unindexed(self) -> None:
        named = {file for _, file in self._known.values()}
        for path in self._root.rglob("*"):
            if path.is_file() and path.relative_to(self._root).as_posix() not in named:
                path.unlink(missing_ok=True)

    # --- sync ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._writer = PeriodicWriter("s3-mirror", self._sync_seconds, self.sync)
        self._writer.start()

    def stop(self) -> None:
        if self._writer is not None:
            self._writer.stop()
        self.sync()

    def sync(self) -> int:
        """Write new and changed objects, drop deleted ones; the number of changes."""
        with self._lock:
            changes = 0
            seen_buckets: set[tuple[str, str]] = set()
            seen: set[tuple[str, str, str]] = set()
            s3 = get_backend("s3")
            for account in list(s3.keys()):
                backend = s3[account][_PARTITION]
                for bucket in backend.list_buckets(None, None, None):
                    seen_buckets.add((account, bucket.name))
                    if (account, bucket.name) not in self._buckets:
                        self._write_bucket(account, bucket.name, str(bucket.region_name))
                        changes += 1
                    keys, _, _, _ = backend.list_objects(bucket, "", None, None, None)
                    for fake in keys:
                        if not hasattr(type(fake), "etag"):  # a delete marker; the class, so no ETag is computed here
                            continue
                        where = (account, bucket.name, str(fake.name))
                        seen.add(where)
                        known = self._known.get(where)
                        if known is None or known[0] != locked_etag(fake):
                            self._write_object(where, fake, known)
                            changes += 1
            for where in set(self._known) - seen:
                self._drop_object(where)
                changes += 1
            for gone in self._buckets - seen_buckets:
                with self._db.transaction() as conn:
                    conn.execute("DELETE FROM s3_buckets WHERE account = ? AND bucket = ?", gone)
                self._buckets.discard(gone)
                changes += 1
            return changes

    def _write_bucket(self, account: str, bucket: str, region: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO s3_buckets VALUES (?, ?, ?)", (account, bucket, region))
        self._buckets.add((account, bucket))

    def _write_object(self, where: tuple[str, str, str], fake: Any, known: tuple[str, str] | None) -> None:
        account, bucket, key = where
        etag = locked_etag(fake)
        digest = hashlib.sha256(f"{account}\0{bucket}\0{key}".encode()).hexdigest()
        file = f"{account}/{digest[:2]}/{digest}-{hashlib.sha256(etag.encode()).hexdigest()[:16]}"
        path = self._root / file
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".partial")
        with temporary.open("wb") as handle:
            handle.write(fake.value)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        attributes = json.dumps({"metadata": dict(fake.metadata)})
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO s3_objects VALUES (?, ?, ?, ?, ?, ?)",
                (account, bucket, key, file, etag, attributes),
            )
        self._known[where] = (etag, file)
        if known is not None and known[1] != file:
            (self._root / known[1]).unlink(missing_ok=True)

    def _drop_object(self, where: tuple[str, str, str]) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM s3_objects WHERE account = ? AND bucket = ? AND key = ?", where)
        _, file = self._known.pop(where)
        (self._root / file).unlink(missing_ok=True)
