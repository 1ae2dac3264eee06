"""Dataset readers: CSV, JSON (lines or a document) and Parquet files, streamed as ``pyarrow.Table`` chunks.

CSV cells are read as text (an empty cell is null, like Spark's CSV reader) and typed later by the statistics, the
way Deequ's ``DataType`` analyzer classifies values. Parquet keeps its column types. JSON values are turned into
their JSON text (``2.0`` stays ``"2.0"``, so it is Fractional; strings stay as they are; nested values are JSON).
Without a header CSV columns are named ``_c0, _c1, …`` (Spark's default names).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from containers.model_monitor.config import DatasetFormat
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["CHUNK_ROWS", "dataset_files", "read_dataset", "rows_to_table", "to_text"]

CHUNK_ROWS = 262_144
CSV_BLOCK_BYTES = 8 << 20


def dataset_files(source: Path) -> list[Path]:
    """Regular files under ``source`` (or ``source`` itself), sorted; hidden and ``_``-prefixed names skipped."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise UserError(
            f"Dataset source {source} does not exist: the job's input was not staged there. "
            "Check the processing input's LocalPath and the dataset_source environment variable."
        )
    files = [
        p
        for p in sorted(source.rglob("*"))
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(source).parts)
    ]
    return files


def read_dataset(source: Path, fmt: DatasetFormat) -> Iterator[pa.Table]:
    """Every chunk of every file under ``source`` in the given (non-capture) format."""
    files = dataset_files(source)
    if not files:
        logger.warning("no data files under %s", source)
    for path in files:
        logger.info("reading %s (%s)", path, fmt.kind)
        if fmt.kind == "csv":
            yield from _read_csv(path, fmt.header)
        elif fmt.kind == "json":
            yield from _read_json(path, fmt.lines)
        elif fmt.kind == "parquet":
            yield from _read_parquet(path)
        else:
            raise UserError(f"read_dataset cannot read {fmt.kind!r} data; capture data goes through capture.py")


def _csv_header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8", newline="") as handle:
        first = handle.readline()
    import csv

    row = next(csv.reader([first]), [])
    return [name.strip() for name in row]


def _read_csv(path: Path, header: bool) -> Iterator[pa.Table]:
    if path.stat().st_size == 0:
        return
    if header:
        names = _csv_header(path)
        skip = 1
    else:
        probe = pacsv.open_csv(path, read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=1 << 16))
        names = [f"_c{i}" for i in range(len(probe.schema))]
        probe.close()
        skip = 0
    read = pacsv.ReadOptions(column_names=names, skip_rows=skip, block_size=CSV_BLOCK_BYTES)
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        reader = pacsv.open_csv(path, read_options=read, convert_options=convert)
        for batch in reader:
            if batch.num_rows:
                yield pa.Table.from_batches([batch])
    except pa.ArrowInvalid as exc:
        raise UserError(
            f"Cannot parse CSV file {path}: {exc}. Every row must have the same number of columns "
            "(and the header, when dataset_format says header=true)."
        ) from exc


def _read_json(path: Path, lines: bool) -> Iterator[pa.Table]:
    if not lines:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserError(
                f"{path} is not a JSON document ({exc}); set dataset_format json.lines=true for JSONL."
            ) from exc
        records = document if isinstance(document, list) else [document]
        for start in range(0, len(records), CHUNK_ROWS):
            yield rows_to_table([_flat(r) for r in records[start : start + CHUNK_ROWS]])
        return
    rows: list[dict[str, str | None]] = []
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(_flat(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number} is not a JSON line ({exc}); fix or remove the line.") from exc
            if len(rows) >= CHUNK_ROWS:
                yield rows_to_table(rows)
                rows = []
    if rows:
        yield rows_to_table(rows)


def _read_parquet(path: Path) -> Iterator[pa.Table]:
    try:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
            yield pa.Table.from_batches([batch])
    except pa.ArrowException as exc:
        raise UserError(f"Cannot read Parquet file {path}: {exc}") from exc


def to_text(value: Any) -> str | None:
    """A JSON value as the text Spark would hold for it (null stays null)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


def _flat(record: Any) -> dict[str, str | None]:
    if isinstance(record, dict):
        return {str(key): to_text(value) for key, value in record.items()}
    if isinstance(record, list):
        return {f"_c{i}": to_text(value) for i, value in enumerate(record)}
    return {"_c0": to_text(record)}


def rows_to_table(rows: Sequence[dict[str, str | None]], names: Sequence[str] | None = None) -> pa.Table:
    """Dict rows to a table of string columns, in first-seen key order (a missing key is null)."""
    if names is None:
        seen: dict[str, None] = {}
        for row in rows:
            for key in row:
                seen.setdefault(key, None)
        names = list(seen)
    columns = {name: pa.array([row.get(name) for row in rows], type=pa.string()) for name in names}
    return pa.table(columns) if columns else pa.table({})
