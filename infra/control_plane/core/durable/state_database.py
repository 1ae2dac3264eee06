"""The stack's embedded database: SQLite in WAL mode under the data directory, with a schema version.

One file, ``<data dir>/state/sagestack.db``. A record is a row ``(account, region, kind, name) -> JSON``; the moto
mirrors add their own tables. WAL with ``synchronous=NORMAL`` keeps every committed transaction across a killed
process (only a power loss may drop the last ones), and a transaction is all or nothing, so a kill -9 at any moment
leaves a database that opens. See docs/local-stack.md ("What persists") and docs/decisions.md ("A durable stack").
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2

_SCHEMA_V1 = (
    """CREATE TABLE IF NOT EXISTS records (
        account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (account, region, kind, name)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS s3_buckets (
        account TEXT NOT NULL, bucket TEXT NOT NULL, region TEXT NOT NULL, PRIMARY KEY (account, bucket))""",
    """CREATE TABLE IF NOT EXISTS s3_objects (
        account TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL, file TEXT NOT NULL, etag TEXT NOT NULL,
        attributes TEXT NOT NULL, PRIMARY KEY (account, bucket, key)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS log_events (
        seq INTEGER PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, log_group TEXT NOT NULL,
        stream TEXT NOT NULL, timestamp INTEGER NOT NULL, message TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS aws_requests (
        seq INTEGER PRIMARY KEY, service TEXT NOT NULL, request TEXT NOT NULL, body BLOB NOT NULL)""",
)

# Schema 2: moto's IAM, CloudWatch Logs groups/streams, CloudWatch metrics and ECR, one row per resource
# (core/durable/moto_mirror.py); their log events go to ``log_events``.
_SCHEMA_V2 = (
    """CREATE TABLE IF NOT EXISTS moto_resources (
        service TEXT NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (service, account, region, kind, name)) WITHOUT ROWID""",
)


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V2:
        conn.execute(statement)


# Migrations from version N to N + 1, run in one transaction each when an older data directory is opened.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_1_to_2}


class StateVersionError(RuntimeError):
    """The data directory was written by a newer Sagestack (or is not Sagestack's): it is left untouched."""


class StateInUseError(RuntimeError):
    """Another running stack holds this data directory."""


class StateDatabase:
    """The connection (shared by threads, under one lock) and the data directory's single-user lock."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "state"
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "sagestack.db"
        self._lock_file = _take_lock(self.root / "stack.lock")
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._refuse_newer()  # before anything writes (switching to WAL rewrites the file's header)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._open_schema()
        except Exception:
            self._lock_file.close()
            raise

    def _refuse_newer(self) -> None:
        found = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'")
        if found.fetchone() is not None:
            self._check_version(int(self._conn.execute("SELECT version FROM schema_version").fetchone()[0]))

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StateVersionError(
                f"the data directory {self.root.parent} was written by a newer Sagestack (state schema "
                f"{version}; this one reads up to {SCHEMA_VERSION}). It is left untouched: upgrade Sagestack, "
                "or point SAGESTACK_DATA_DIR elsewhere (`sagestack reset` empties it)."
            )

    def _open_schema(self) -> None:
        with self.transaction() as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "schema_version" not in tables:
                if tables:
                    raise StateVersionError(f"{self.path} holds tables but no schema version: not a Sagestack state")
                conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                for statement in (*_SCHEMA_V1, *_SCHEMA_V2):
                    conn.execute(statement)
                return
            version = int(conn.execute("SELECT version FROM schema_version").fetchone()[0])
            self._check_version(version)
            for step in range(version, SCHEMA_VERSION):
                logger.info("migrating the state in %s from schema %d to %d", self.path, step, step + 1)
                MIGRATIONS[step](conn)
                conn.execute("UPDATE schema_version SET version = ?", (step + 1,))

    @property
    def version(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT version FROM schema_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One all-or-nothing transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, args: Iterable[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, tuple(args)))

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                logger.warning("could not checkpoint %s", self.path)
            self._conn.close()
        self._lock_file.close()


def _take_lock(path: Path) -> IO[str]:
    handle = open(path, "a+")  # held open for the stack's life: the lock is the open file
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise StateInUseError(
            f"another Sagestack is running on the data directory {path.parent.parent} (lock {path}); "
            "stop it first, or set SAGESTACK_DATA_DIR to another directory"
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
