"""The online store: the newest record per identifier, behind a small interface; SQLite (WAL) under the data dir.

One row per (group, record identifier) holds the record's event time, its expiry and its features as JSON. A soft
delete keeps a tombstone carrying the delete's event time, so an older PutRecord cannot bring the record back; a hard
delete removes the row. See docs/feature-store.md ("Records and the online store").
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol


@dataclass(frozen=True)
class OnlineRecord:
    """A stored record: its features as the API returns them (``FeatureName`` / ``ValueAsString`` dicts)."""

    record_id: str
    event_time: float
    expires_at: float | None
    deleted: bool
    features: list[dict[str, Any]]


class OnlineWrite(NamedTuple):  # a tuple: one is made per record written
    group: str
    record_id: str
    event_time: float
    expires_at: float | None
    features: list[dict[str, Any]]


class OnlineStore(Protocol):
    """What the Feature Store runtime needs of its online store."""

    def put_many(self, writes: Sequence[OnlineWrite]) -> int:
        """Write each record unless a newer one (or a newer soft delete) is stored; the number written."""
        ...

    def get(self, group: str, record_id: str) -> OnlineRecord | None: ...

    def list_ids(self, group: str, after: str | None, limit: int, with_deleted: bool, now: float) -> list[str]:
        """Up to ``limit`` identifiers after ``after`` in order: unexpired, soft-deleted ones only when asked."""
        ...

    def delete(self, group: str, record_id: str, event_time: float, hard: bool) -> None: ...

    def drop_group(self, group: str) -> None: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    group_name TEXT NOT NULL,
    record_id TEXT NOT NULL,
    event_time REAL NOT NULL,
    expires_at REAL,
    deleted INTEGER NOT NULL DEFAULT 0,
    features TEXT NOT NULL,
    PRIMARY KEY (group_name, record_id)
) WITHOUT ROWID
"""
# Write only when no stored row is newer; a soft-deleted row is replaced only by a strictly newer record.
_UPSERT = """
INSERT INTO records (group_name, record_id, event_time, expires_at, deleted, features) VALUES (?, ?, ?, ?, 0, ?)
ON CONFLICT (group_name, record_id) DO UPDATE SET
    event_time = excluded.event_time, expires_at = excluded.expires_at, deleted = 0, features = excluded.features
WHERE excluded.event_time > records.event_time OR (excluded.event_time = records.event_time AND records.deleted = 0)
"""


class SqliteOnlineStore:
    """SQLite in WAL mode; one connection per thread for reads, writes serialized by a lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._registry_lock = threading.Lock()
        with self._write_lock:
            connection = self._connection()
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)
            connection.commit()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._path, check_same_thread=False, isolation_level="DEFERRED")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=5000")
            self._local.connection = connection
            with self._registry_lock:
                self._connections.append(connection)
        return connection

    def put_many(self, writes: Sequence[OnlineWrite]) -> int:
        rows = ((w.group, w.record_id, w.event_time, w.expires_at, json.dumps(w.features)) for w in writes)
        with self._write_lock:
            connection = self._connection()
            before = connection.total_changes
            connection.executemany(_UPSERT, rows)
            connection.commit()
            return connection.total_changes - before

    def get(self, group: str, record_id: str) -> OnlineRecord | None:
        row = (
            self._connection()
            .execute(
                "SELECT event_time, expires_at, deleted, features FROM records WHERE group_name = ? AND record_id = ?",
                (group, record_id),
            )
            .fetchone()
        )
        if row is None:
            return None
        return OnlineRecord(record_id, float(row[0]), row[1], bool(row[2]), json.loads(row[3]))

    def list_ids(self, group: str, after: str | None, limit: int, with_deleted: bool, now: float) -> list[str]:
        rows = (
            self._connection()
            .execute(
                "SELECT record_id FROM records WHERE group_name = ? AND record_id > ? AND (deleted = 0 OR ?) "
                "AND (expires_at IS NULL OR expires_at > ?) ORDER BY record_id LIMIT ?",
                (group, after or "", 1 if with_deleted else 0, now, limit),
            )
            .fetchall()
        )
        return [str(row[0]) for row in rows]

    def delete(self, group: str, record_id: str, event_time: float, hard: bool) -> None:
        with self._write_lock:
            connection = self._connection()
            if hard:
                connection.execute(
                    "DELETE FROM records WHERE group_name = ? AND record_id = ? AND event_time <= ?",
                    (group, record_id, event_time),
                )
            else:
                connection.execute(
                    "INSERT INTO records (group_name, record_id, event_time, expires_at, deleted, features) "
                    "VALUES (?, ?, ?, NULL, 1, '[]') ON CONFLICT (group_name, record_id) DO UPDATE SET "
                    "event_time = excluded.event_time, deleted = 1, features = '[]' "
                    "WHERE excluded.event_time >= records.event_time",
                    (group, record_id, event_time),
                )
            connection.commit()

    def drop_group(self, group: str) -> None:
        with self._write_lock:
            connection = self._connection()
            connection.execute("DELETE FROM records WHERE group_name = ?", (group,))
            connection.commit()

    def close(self) -> None:
        with self._registry_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.close()
            except sqlite3.ProgrammingError:
                pass  # made in another thread that is still using it: closed with the process
