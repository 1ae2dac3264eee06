"""What a query execution needs of the SQL engine, and the engine built at the first query.

The engine (:mod:`infra.control_plane.athena.sql_engine`) brings DuckDB, sqlglot, pyarrow's readers and pyiceberg;
an idle stack that never runs an Athena query does not import them (about 30 MB of its idle RSS at start).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class QueryFailed(Exception):
    """The query cannot run; ``kind`` is Athena's error name (SYNTAX_ERROR, TABLE_NOT_FOUND, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class QueryResult:
    columns: list[tuple[str, str]]  # (name, Athena type)
    rows: list[tuple[Any, ...]]
    statement_type: str  # DML or DDL


class QueryEngine(Protocol):
    def run(self, sql: str, database: str) -> QueryResult: ...


class DeferredQueryEngine:
    """A :class:`QueryEngine` that builds the real one when the first query runs."""

    def __init__(self, build: Callable[[], QueryEngine]) -> None:
        self._build = build
        self._engine: QueryEngine | None = None
        self._lock = threading.Lock()

    def run(self, sql: str, database: str) -> QueryResult:
        with self._lock:
            if self._engine is None:
                self._engine = self._build()
            engine = self._engine
        return engine.run(sql, database)
