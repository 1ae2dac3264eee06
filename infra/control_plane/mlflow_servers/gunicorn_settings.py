"""Gunicorn settings of a managed MLflow server (``-c python:<this module>``; docs/experiments.md#managed-mlflow).

Imported by gunicorn in the server process before it forks its worker. MLflow opens its SQLite backend store with
SQLite's defaults: a rollback journal and a full sync, several ``fsync`` calls per commit and two commits per
``log_batch``, which on a laptop's disk cost more than the rest of the call. Every SQLite connection is opened here
in WAL mode with ``synchronous=NORMAL``, as the stack's own state database is: a commit is durable across a crash of
the server or the stack, and only a power cut can lose the last commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

# One worker process, threads for concurrent requests (the UI's parallel calls, an artifact upload beside logging);
# a kept-alive connection carries a client's next call.
worker_class = "gthread"
threads = 8
keepalive = 30
timeout = 0  # no worker restart for a long artifact transfer through the server
graceful_timeout = 5  # within the stack's stop grace period (then SIGKILL)
loglevel = "warning"


def tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


event.listen(Engine, "connect", tune_sqlite)
