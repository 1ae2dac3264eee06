"""moto's IAM, CloudWatch Logs and metrics, and ECR kept across restarts, the way the S3 mirror keeps S3.

moto 5.2 has no storage hook (docs/decisions.md, "A durable stack"). Every few tenths of a second and at stop the
mirror reads each service through :mod:`moto_resources` (public backend methods only) and writes, in one transaction,
the rows whose JSON changed and the deletes; log events are appended to ``log_events`` (a stream is read again only
when its ``lastIngestionTime`` moved). At start it refills moto in :data:`KIND_ORDER`, then the log events in their
stored order. A transaction is all or nothing, so a kill -9 leaves the last committed sync, readable.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moto.backends import get_backend

from infra.control_plane.core.durable import moto_resources as services
from infra.control_plane.core.durable.periodic_writer import PeriodicWriter
from infra.control_plane.core.durable.state_database import StateDatabase

logger = logging.getLogger(__name__)

Key = tuple[str, str, str, str, str]  # service, account, region, kind, name


@dataclass(frozen=True)
class MirroredService:
    """How one moto service is read into rows and refilled; ``loaded`` says whether it can hold anything yet (a
    service imported on first use, like CloudFormation, is not read, nor its rows dropped, before then)."""

    read: Callable[[Any], services.Rows]
    restore: Callable[[Any, str, str, dict[str, Any]], None]
    loaded: Callable[[], bool] = lambda: True


_SERVICES: dict[str, MirroredService] = {
    "iam": MirroredService(services.iam_rows, services.iam_restore),
    "logs": MirroredService(services.logs_rows, services.logs_restore),
    "cloudwatch": MirroredService(services.metrics_rows, services.metrics_restore),
    "ecr": MirroredService(services.ecr_rows, services.ecr_restore),
}
_EVENTS_PAGE = 10000


def _backends(service: str) -> list[tuple[str, str, Any]]:
    """(account, region, backend) of every backend moto has built so far (none is built here)."""
    found = []
    backend_dict = get_backend(service)  # type: ignore[call-overload]
    for account in list(backend_dict.keys()):
        per_account = backend_dict[account]
        for region in list(per_account.keys()):
            found.append((str(account), str(region), per_account[region]))
    return found


class MotoMirror:
    def __init__(
        self, db: StateDatabase, sync_seconds: float = 1.0, extra: Mapping[str, MirroredService] | None = None
    ) -> None:
        self._db = db
        self._services = {**_SERVICES, **(extra or {})}  # extra: services of upper layers (CloudFormation stacks)
        self._sync_seconds = sync_seconds
        self._written: dict[Key, str] = {}
        self._streams: dict[tuple[str, str, str, str], tuple[int, object]] = {}  # -> (events stored, ingestion)
        self._lock = threading.Lock()
        self._writer: PeriodicWriter | None = None

    # --- start ---------------------------------------------------------------------------------------------

    def restore(self) -> int:
        """Refill moto from the stored rows and log events; the resources restored."""
        rows = self._db.query("SELECT service, account, region, kind, name, body FROM moto_resources")
        order = {kind: place for place, kind in enumerate(services.KIND_ORDER)}
        rows.sort(key=lambda row: (order.get(str(row[3]), len(order)), str(row[4])))
        restored = 0
        # moto is per process: a second stack of this process finds the first's. A service not imported yet holds
        # nothing, and reading it would import it: CloudFormation pulls in moto's EC2 and Auto Scaling (~80 MB of
        # idle RSS), so it is imported only when a stored row needs it or on first use.
        present = self._read(self._unloaded())
        for service_name, account, region, kind, name, body in rows:
            key: Key = (str(service_name), str(account), str(region), str(kind), str(name))
            service = self._services.get(key[0])
            if service is None:
                logger.error("stored %s %s: no such mirrored service here; it is left in the database", key[0], key[4])
                continue
            if key in present:
                self._written[key] = present[key]
                restored += 1
                continue
            try:
                backend = get_backend(key[0])[key[1]][key[2]]  # type: ignore[call-overload]
                service.restore(backend, key[3], key[4], json.loads(str(body)))
            except Exception:
                logger.exception("stored %s %s %s cannot be restored; it is left in the database", *key[0:1], *key[3:])
                continue
            self._written[key] = str(body)
            restored += 1
        events = self._restore_events()
        logger.info("restored %d IAM, Logs, CloudWatch and ECR resources and %d log events", restored, events)
        return restored

    def _restore_events(self) -> int:
        rows = self._db.query(
            "SELECT account, region, log_group, stream, timestamp, message FROM log_events ORDER BY seq"
        )
        batches: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
        for account, region, group, stream, timestamp, message in rows:
            where = (str(account), str(region), str(group), str(stream))
            batches.setdefault(where, []).append({"timestamp": int(str(timestamp)), "message": str(message)})
        restored = 0
        for where, events in batches.items():
            backend = get_backend("logs")[where[0]][where[1]]
            try:
                if already := _all_events(backend, where[2], where[3]):  # a second stack of this process
                    self._streams[where] = (len(already), None)
                    continue
                for batch in _chronological(events):
                    backend.put_log_events(where[2], where[3], batch)
            except Exception:
                logger.exception("the log events of %s/%s cannot be restored", where[2], where[3])
                continue
            restored += len(events)
            self._streams[where] = (len(events), None)
        return restored

    # --- sync ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._writer = PeriodicWriter("moto-mirror", self._sync_seconds, self.sync)
        self._writer.start()

    def stop(self) -> None:
        if self._writer is not None:
            self._writer.stop()
        self.sync()

    def sync(self) -> int:
        """Write changed and new resources, drop deleted ones, append new log events; the number of changes."""
        with self._lock:
            unread = self._unloaded()
            current = self._read(unread)
            changed = [(key, body) for key, body in current.items() if self._written.get(key) != body]
            gone = [key for key in self._written if key not in current and key[0] not in unread]
            events = self._new_events()
            if not changed and not gone and not events:
                return 0
            with self._db.transaction() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO moto_resources VALUES (?, ?, ?, ?, ?, ?)",
                    [(*key, body) for key, body in changed],
                )
                conn.executemany(
                    "DELETE FROM moto_resources WHERE service=? AND account=? AND region=? AND kind=? AND name=?",
                    gone,
                )
                for where, rows, _ in events:
                    conn.executemany(
                        "INSERT INTO log_events (account, region, log_group, stream, timestamp, message) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        [(*where, event["timestamp"], event["message"]) for event in rows],
                    )
                for key in gone:
                    if key[0] == "logs" and key[3] == "log-stream":
                        group, _, stream = key[4].partition("\0")
                        conn.execute(
                            "DELETE FROM log_events WHERE account=? AND region=? AND log_group=? AND stream=?",
                            (key[1], key[2], group, stream),
                        )
                    elif key[0] == "logs" and key[3] == "log-group":
                        conn.execute(
                            "DELETE FROM log_events WHERE account=? AND region=? AND log_group=?", key[1:3] + key[4:]
                        )
            for key, body in changed:
                self._written[key] = body
            for key in gone:
                self._written.pop(key, None)
            for where, rows, ingestion in events:
                self._streams[where] = (self._streams.get(where, (0, None))[0] + len(rows), ingestion)
            return len(changed) + len(gone) + sum(len(rows) for _, rows, _ in events)

    def _unloaded(self) -> set[str]:
        return {name for name, service in self._services.items() if not service.loaded()}

    def _read(self, unread: set[str]) -> dict[Key, str]:
        """Every resource's row, of the services not in ``unread``."""
        current: dict[Key, str] = {}
        for name, service in self._services.items():
            if name in unread:
                continue
            for account, region, backend in _backends(name):
                for (kind, resource), body in service.read(backend).items():
                    current[name, account, region, kind, resource] = body
        return current

    def _new_events(self) -> list[tuple[tuple[str, str, str, str], list[dict[str, Any]], object]]:
        """Per stream whose last ingestion moved: the events after those already stored."""
        found = []
        for account, region, backend in _backends("logs"):
            for group in services.log_groups(backend):
                for stream in services.log_streams(backend, group.name):
                    where = (account, region, group.name, str(stream["logStreamName"]))
                    stored, ingestion = self._streams.get(where, (0, None))
                    if stream.get("lastIngestionTime") == ingestion:
                        continue
                    events = _all_events(backend, group.name, where[3])
                    found.append((where, events[stored:], stream.get("lastIngestionTime")))
        return found


def _all_events(backend: Any, group: str, stream: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page, _, forward = backend.get_log_events(group, None, stream, None, None, _EVENTS_PAGE, token, True)
        events += page
        if not page or forward == token:
            return events
        token = forward


def _chronological(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Batches moto accepts: each in non-decreasing time order (an earlier event starts a new batch)."""
    batches: list[list[dict[str, Any]]] = []
    for event in events:
        if not batches or batches[-1][-1]["timestamp"] > event["timestamp"]:
            batches.append([])
        batches[-1].append(event)
    return batches
