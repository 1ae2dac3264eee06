"""Athena SQL executed for real: parsed as Athena's (Trino) dialect by sqlglot, run by DuckDB over the Glue tables.

Every table a query names is looked up in the Glue Data Catalog (the query's database by default), its files read
from S3 into Arrow and registered with a fresh in-memory DuckDB connection under a private name; the query is then
rewritten into DuckDB's dialect. See docs/feature-store.md ("Athena locally") for what differs from Athena.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from infra.control_plane.athena.query_engine import QueryFailed, QueryResult
from infra.control_plane.athena.table_sources import TableProblem, TableSources

logger = logging.getLogger(__name__)

_ATHENA_TYPES = {
    "VARCHAR": "varchar",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "TINYINT": "tinyint",
    "DOUBLE": "double",
    "FLOAT": "float",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
}


class SqlEngine:
    def __init__(self, sources: TableSources, threads: int = 2) -> None:
        self._sources = sources
        self._threads = threads

    def run(self, sql: str, database: str) -> QueryResult:
        try:
            if self._sources.apply_ddl(sql, database):
                return QueryResult([], [], "DDL")
        except TableProblem as exc:
            raise QueryFailed(exc.kind, exc.message) from exc
        tree = _parse(sql)
        connection = duckdb.connect(config={"threads": self._threads})
        try:
            connection.execute("SET TimeZone='UTC'")
            self._bind_tables(connection, tree, database)
            _rewrite_functions(tree)
            relation = connection.sql(tree.sql(dialect="duckdb"))
            if relation is None:
                return QueryResult([], [], "DML")
            columns = [
                (name, _athena_type(str(kind))) for name, kind in zip(relation.columns, relation.types, strict=True)
            ]
            return QueryResult(columns, relation.fetchall(), "DML")
        except duckdb.Error as exc:
            raise QueryFailed(_kind(exc), _first_line(str(exc))) from exc
        finally:
            connection.close()

    def _bind_tables(self, connection: duckdb.DuckDBPyConnection, tree: exp.Expression, database: str) -> None:
        local = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        bound: dict[tuple[str, str], str] = {}
        for table in list(tree.find_all(exp.Table)):
            if not table.name or (not table.db and table.name.lower() in local):
                continue
            key = ((table.db or database).lower(), table.name.lower())
            if key not in bound:
                try:
                    glue_table = self._sources.table(*key)
                    data = self._sources.load(glue_table)
                except TableProblem as exc:
                    raise QueryFailed(exc.kind, exc.message) from exc
                bound[key] = f"__athena_table_{len(bound)}"
                connection.register(bound[key], data)
            alias = table.alias or (table.name if table.db else "")
            replacement = exp.Table(this=exp.to_identifier(bound[key]))
            if alias:
                replacement.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
            table.replace(replacement)


def _parse(sql: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except ParseError as exc:
        errors: Sequence[dict[str, Any]] = exc.errors or [{}]
        first = errors[0]
        where = f"line {first.get('line', 1)}:{first.get('col', 1)}: "
        raise QueryFailed("SYNTAX_ERROR", where + str(first.get("description") or exc)) from exc
    if len(statements) != 1:
        raise QueryFailed("SYNTAX_ERROR", "Only one sql statement is allowed.")
    statement = statements[0]
    if not isinstance(statement, exp.Expression):
        raise QueryFailed("SYNTAX_ERROR", "Not a SQL statement.")
    return statement


def _rewrite_functions(tree: exp.Expression) -> None:
    """Athena functions DuckDB spells differently (sqlglot translates the rest)."""
    for func in list(tree.find_all(exp.Anonymous)):
        name = str(func.name).lower()
        if name == "to_timestamp" and len(func.expressions) == 2:  # Teradata-style to_timestamp(text, format)
            func.replace(exp.cast(func.expressions[0], exp.DataType.build("TIMESTAMP")))


def _athena_type(duck_type: str) -> str:
    if duck_type.startswith("DECIMAL"):
        return "decimal"
    if duck_type.endswith("[]"):
        return "array"
    return _ATHENA_TYPES.get(duck_type, "varchar")


def _kind(exc: duckdb.Error) -> str:
    if isinstance(exc, duckdb.ParserException):
        return "SYNTAX_ERROR"
    if isinstance(exc, duckdb.CatalogException):
        return "TABLE_NOT_FOUND" if "Table" in str(exc) else "FUNCTION_NOT_FOUND"
    if isinstance(exc, duckdb.BinderException):
        return "COLUMN_NOT_FOUND" if "column" in str(exc).lower() else "TYPE_MISMATCH"
    if isinstance(exc, duckdb.ConversionException | duckdb.InvalidInputException):
        return "INVALID_CAST_ARGUMENT"
    return "GENERIC_INTERNAL_ERROR"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "query failed"
