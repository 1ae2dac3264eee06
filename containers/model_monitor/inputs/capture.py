"""Captured inference records (docs/reference/formats.md#data-capture-records): JSON lines, ``.jsonl`` or ``.jsonl.gz``.

Each record's ``data`` is decoded by its ``encoding`` (``CSV`` and ``JSON`` are text, ``BASE64`` is the base64 of the
raw body) and then parsed by its ``observedContentType``. Rows of one record: the output columns come first, then the
input columns (``output_columns_position: START``), named ``_c0, _c1, …`` for CSV or by key for JSON. A payload of
several CSV lines, or a JSON list (also under a single key such as ``instances``/``predictions``), gives several rows.
Records outside ``[start_time, end_time)`` (by ``eventMetadata.inferenceTime``) are skipped; corrupt lines are
counted and logged, never fatal.
"""

from __future__ import annotations

import base64
import binascii
import csv
import gzip
import io
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from containers.model_monitor.config import parse_time
from containers.model_monitor.inputs.readers import CHUNK_ROWS, dataset_files, rows_to_table, to_text
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = [
    "CaptureRecord",
    "CaptureTally",
    "Row",
    "capture_tables",
    "decode_payload",
    "iter_records",
    "open_text",
    "record_rows",
]

Row = dict[str, str | None]
OUTPUT_FIRST = ("endpointOutput", "batchTransformOutput", "endpointInput")
MAX_LOGGED_CORRUPT = 5


@dataclass
class CaptureTally:
    """What the reader saw, for the job log and the exit message."""

    files: int = 0
    records: int = 0
    in_window: int = 0
    corrupt: int = 0
    dropped: int = 0


@dataclass
class CaptureRecord:
    raw: dict[str, Any]
    event_id: str
    inference_id: str | None
    inference_time: datetime | None
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)  # captureData entries by index name

    @property
    def merge_key(self) -> str:
        """The ground-truth join key: the caller's inference id when present, else the event id."""
        return self.inference_id or self.event_id


def open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open("r", encoding="utf-8")


def iter_records(
    source: Path, start: datetime | None, end: datetime | None, tally: CaptureTally
) -> Iterator[CaptureRecord]:
    """Every well-formed capture record under ``source`` whose inference time is in ``[start, end)``."""
    for path in dataset_files(source):
        if not path.name.endswith((".jsonl", ".jsonl.gz", ".json")):
            continue
        tally.files += 1
        with open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                tally.records += 1
                record = _parse_line(line, path, number, tally)
                if record is None:
                    continue
                stamp = record.inference_time
                if stamp is not None and ((start and stamp < start) or (end and stamp >= end)):
                    continue
                tally.in_window += 1
                yield record


def _parse_line(line: str, path: Path, number: int, tally: CaptureTally) -> CaptureRecord | None:
    try:
        raw = json.loads(line)
        data = raw.get("captureData") or {}
        meta = raw.get("eventMetadata") or {}
        if not isinstance(data, dict) or not data:
            raise ValueError("no captureData")
        stamp = parse_time(meta.get("inferenceTime"), "inferenceTime") if meta.get("inferenceTime") else None
        return CaptureRecord(
            raw=raw,
            event_id=str(meta.get("eventId", "")),
            inference_id=meta.get("inferenceId") or None,
            inference_time=stamp,
            payloads={k: v for k, v in data.items() if isinstance(v, dict)},
        )
    except (ValueError, AttributeError, UserError) as exc:
        tally.corrupt += 1
        if tally.corrupt <= MAX_LOGGED_CORRUPT:
            logger.warning("corrupt capture line %s:%d skipped: %s", path, number, exc)
        return None


def decode_payload(payload: dict[str, Any]) -> Any:
    """A captured ``data`` as Python: CSV → list of rows of cells, JSON → the parsed value."""
    text = str(payload.get("data", ""))
    encoding = str(payload.get("encoding", "CSV")).upper()
    if encoding == "BASE64":
        try:
            text = base64.b64decode(text, validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"BASE64 data does not decode to UTF-8 text: {exc}") from exc
    content_type = str(payload.get("observedContentType", "")).lower()
    if encoding == "JSON" or "json" in content_type:
        if "jsonlines" in content_type:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    return [row for row in csv.reader(io.StringIO(text)) if row]


def _json_rows(value: Any) -> list[list[Any] | dict[str, Any]]:
    if isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value.values())), list):
        value = next(iter(value.values()))  # {"instances": [...]} / {"predictions": [...]}
    if isinstance(value, list):
        if value and all(isinstance(v, dict | list) for v in value):
            return list(value)
        return [value]
    if isinstance(value, dict):
        return [value]
    return [[value]]


def _flatten(prefix: str, value: dict[str, Any], out: Row) -> None:
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            _flatten(f"{name}.", item, out)
        else:
            out[name] = to_text(item)


def record_rows(record: CaptureRecord, index_names: Sequence[str], names: Sequence[str] | None = None) -> list[Row]:
    """The rows of one record without a preprocessor (outputs first, then inputs)."""
    parts: list[list[list[Any] | dict[str, Any]]] = []
    for index in OUTPUT_FIRST:
        if index in index_names and index in record.payloads:
            decoded = decode_payload(record.payloads[index])
            parts.append(decoded if _is_csv(decoded) else _json_rows(decoded))
    count = max((len(p) for p in parts), default=0)
    rows: list[Row] = []
    for i in range(count):
        row: Row = {}
        position = 0
        for part in parts:
            piece = part[i] if i < len(part) else (part[0] if len(part) == 1 else [])
            if isinstance(piece, dict):
                _flatten("", piece, row)
            else:
                for cell in piece:
                    row[_name(position, names)] = to_text(cell) if not isinstance(cell, str) else (cell or None)
                    position += 1
        rows.append(row)
    return rows


def _is_csv(decoded: Any) -> bool:
    return isinstance(decoded, list) and all(
        isinstance(r, list) and all(isinstance(c, str) for c in r) for r in decoded
    )


def _name(position: int, names: Sequence[str] | None) -> str:
    if names is not None and position < len(names):
        return names[position]
    return f"_c{position}"


def capture_tables(
    records: Iterator[CaptureRecord],
    to_rows: Callable[[CaptureRecord], list[Row]],
    tally: CaptureTally,
) -> Iterator[pa.Table]:
    """Rows of the records, ``CHUNK_ROWS`` at a time; a record whose payload does not parse counts as corrupt."""
    rows: list[Row] = []
    for record in records:
        try:
            produced = to_rows(record)
        except (ValueError, KeyError, TypeError) as exc:
            tally.corrupt += 1
            if tally.corrupt <= MAX_LOGGED_CORRUPT:
                logger.warning("capture record %s skipped: its data does not parse: %s", record.event_id, exc)
            continue
        if not produced:
            tally.dropped += 1
        rows.extend(produced)
        if len(rows) >= CHUNK_ROWS:
            yield rows_to_table(rows)
            rows = []
    if rows:
        yield rows_to_table(rows)
