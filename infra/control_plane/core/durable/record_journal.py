"""Control-plane records written to the state database: at once on create and delete, and on every change.

Records are mutable objects that handlers, executors and runners change in place, so a change is found rather than
announced: a record that was looked up (``Store.get_or_raise``/``find``, a map's ``[]``) or that is still active
(its ``status`` is one that moves on: InProgress, Executing, Creating, ...) is re-encoded on the next flush, and
written only when its stored form changed. A flush is one transaction; it runs every ``flush_seconds`` and at stop.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from infra.control_plane.core.durable.periodic_writer import PeriodicWriter
from infra.control_plane.core.durable.record_codec import RecordCodecError, decode_record, encode_record
from infra.control_plane.core.durable.state_database import StateDatabase

logger = logging.getLogger(__name__)

# Statuses after which a record still changes on its own (its executor, runner or scheduler moves it on).
ACTIVE_STATUSES = frozenset(
    {"InProgress", "Stopping", "Executing", "Creating", "Updating", "Deleting", "Pending", "Starting", "Scheduled"}
)


# FailureReason of whatever was running when the stack stopped (docs/local-stack.md, "Restart semantics").
RESTART_REASON = (
    "The Sagestack stack stopped while this was running (stack restart or crash); it was not resumed. "
    "Its logs up to then are kept."
)


def is_active(record: Any) -> bool:
    status = getattr(record, "status", None)
    return getattr(status, "value", status) in ACTIVE_STATUSES


@dataclass
class Collection:
    """The rows of one kind in one account/region, and what changed since the last flush."""

    journal: RecordJournal
    account: str
    region: str
    kind: str
    items: Callable[[], dict[str, Any]]  # a snapshot of the owner's records
    written: dict[str, str] = field(default_factory=dict)  # name -> the stored JSON
    touched: set[str] = field(default_factory=set)
    was_active: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def touch(self, name: str) -> None:
        with self.lock:
            self.touched.add(name)

    def write_now(self, name: str, record: Any) -> None:
        body = _encode(self.kind, record)
        if body is None:
            return
        with self.journal.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)",
                (self.account, self.region, self.kind, name, body),
            )
        with self.lock:
            self.written[name] = body

    def delete_now(self, name: str) -> None:
        with self.journal.db.transaction() as conn:
            conn.execute(
                "DELETE FROM records WHERE account = ? AND region = ? AND kind = ? AND name = ?",
                (self.account, self.region, self.kind, name),
            )
        with self.lock:
            self.written.pop(name, None)
            self.touched.discard(name)

    def changes(self, everything: bool) -> list[tuple[str, str]]:
        """``(name, body)`` of records whose stored form changed (all records when ``everything``)."""
        records = self.items()
        active = {name for name, record in records.items() if is_active(record)}
        with self.lock:
            # A record that was active at the last flush is looked at once more: its last move (to Completed,
            # InService, ...) happened after that flush.
            touched, self.touched, self.was_active = self.touched | self.was_active, set(), active
        names = records.keys() if everything else (touched | active) & records.keys()
        out = []
        for name in names:
            body = _encode(self.kind, records[name])
            if body is not None and self.written.get(name) != body:
                out.append((name, body))
        return out


def _encode(kind: str, record: Any) -> str | None:
    lock = getattr(record, "lock", None)
    try:
        if lock is not None and hasattr(lock, "acquire"):
            with lock:
                return json.dumps(encode_record(record), separators=(",", ":"))
        return json.dumps(encode_record(record), separators=(",", ":"))
    except (RecordCodecError, TypeError, ValueError, RuntimeError):
        logger.exception("a %s record cannot be stored; it will not survive a restart", kind)
        return None


class RecordJournal:
    """Every :class:`Collection` of one stack, flushed together by one background thread."""

    def __init__(self, db: StateDatabase, flush_seconds: float = 0.25) -> None:
        self.db = db
        self._flush_seconds = flush_seconds
        self._collections: list[Collection] = []
        self._lock = threading.Lock()
        self._writer: PeriodicWriter | None = None

    def regions(self) -> list[tuple[str, str]]:
        """Every account/region with stored records (their backends are built at start-up)."""
        return [(str(a), str(r)) for a, r in self.db.query("SELECT DISTINCT account, region FROM records")]

    def open(
        self, account: str, region: str, kind: str, record_type: type[Any], items: Callable[[], dict[str, Any]]
    ) -> tuple[Collection, dict[str, Any]]:
        """Register a collection and give back its stored records, decoded (a row that no longer decodes is
        logged and left in the database, never half-restored)."""
        collection = Collection(self, account, region, kind, items)
        loaded: dict[str, Any] = {}
        rows = self.db.query(
            "SELECT name, body FROM records WHERE account = ? AND region = ? AND kind = ?", (account, region, kind)
        )
        for name, body in rows:
            try:
                loaded[str(name)] = decode_record(record_type, json.loads(str(body)))
            except Exception:
                logger.exception("stored %s %s cannot be read back; it is not restored", kind, name)
                continue
            collection.written[str(name)] = str(body)
        with self._lock:
            self._collections.append(collection)
        return collection, loaded

    def flush(self, everything: bool = False) -> int:
        """Write what changed in one transaction; the number of rows written."""
        with self._lock:
            collections = list(self._collections)
        pending = [(c, name, body) for c in collections for name, body in c.changes(everything)]
        if not pending:
            return 0
        with self.db.transaction() as conn:
            # Checked inside the transaction: a record deleted meanwhile (its row deleted after it left its owner)
            # is not written back.
            present = {id(c): c.items().keys() for c, _, _ in pending}
            pending = [(c, name, body) for c, name, body in pending if name in present[id(c)]]
            conn.executemany(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)",
                [(c.account, c.region, c.kind, name, body) for c, name, body in pending],
            )
        for c, name, body in pending:
            with c.lock:
                c.written[name] = body
        return len(pending)

    def start(self) -> None:
        self._writer = PeriodicWriter("state-flush", self._flush_seconds, self.flush)
        self._writer.start()

    def stop(self) -> None:
        if self._writer is not None:
            self._writer.stop(join_seconds=10)
        self.flush(everything=True)


_BINDING: ContextVar[tuple[RecordJournal, str, str] | None] = ContextVar("sagestack_record_journal", default=None)


@contextmanager
def bind_records(journal: RecordJournal | None, account: str, region: str) -> Iterator[None]:
    """Stores built inside this block (one backend's) load from and write to ``journal``."""
    token = _BINDING.set((journal, account, region) if journal is not None else None)
    try:
        yield
    finally:
        _BINDING.reset(token)


def current_binding() -> tuple[RecordJournal, str, str] | None:
    return _BINDING.get()
