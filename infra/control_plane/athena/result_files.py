"""Query results as Athena writes them: a CSV with a header row, every value double-quoted, NULL as an empty field."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal

from infra.control_plane.athena.query_engine import QueryResult


def render_value(value: object) -> str:
    """A value as Athena prints it (``true``, ``1.5``, ``2024-01-02 03:04:05.000``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return repr(value) if not value.is_integer() or abs(value) >= 1e16 else f"{value:.1f}"
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return f"{text} UTC" if value.tzinfo is not None else text
    if isinstance(value, date | Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    return str(value)


def render_csv(result: QueryResult) -> bytes:
    lines = [",".join(_quoted(name) for name, _ in result.columns)]
    for row in result.rows:
        lines.append(",".join("" if v is None else _quoted(render_value(v)) for v in row))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
