"""Batch transform data handling (docs/reference/formats.md#batch-transform-records): split files into records, pack
requests, join and filter.

Pure functions over bytes; the executor does the I/O.
"""

from __future__ import annotations

import csv
import io
import json
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from infra.control_plane.core.jsonpath import JsonPathError, select

__all__ = ["DataProcessing", "RecordError", "pack_requests", "split_records"]

_RECORDIO_MAGIC = 0xCED7230A
_HEADER = struct.Struct("<II")
_LENGTH_MASK = (1 << 29) - 1
CSV, JSON, JSON_LINES = "text/csv", "application/json", "application/jsonlines"
_PROCESSABLE = (CSV, JSON, JSON_LINES)


class RecordError(ValueError):
    """An input file cannot be split, packed, filtered or joined; the message becomes the file's failure."""


def split_records(data: bytes, split_type: str) -> list[bytes]:
    """``None``: the whole file; ``Line``: each non-blank line with its newline; ``RecordIO``: each payload."""
    if split_type == "Line":
        return [line if line.endswith(b"\n") else line + b"\n" for line in data.splitlines() if line.strip()]
    if split_type == "RecordIO":
        return list(_recordio_payloads(data))
    if split_type in ("None", ""):
        return [data]
    raise RecordError(f"SplitType {split_type} is not supported locally (supported: None, Line, RecordIO)")


def _recordio_payloads(data: bytes) -> Iterator[bytes]:
    offset = 0
    while offset < len(data):
        if offset + _HEADER.size > len(data):
            raise RecordError(f"truncated RecordIO header at byte {offset}")
        magic, word = _HEADER.unpack_from(data, offset)
        if magic != _RECORDIO_MAGIC:
            raise RecordError(f"bad RecordIO magic at byte {offset}")
        length = word & _LENGTH_MASK
        start = offset + _HEADER.size
        if start + length > len(data):
            raise RecordError(f"truncated RecordIO record at byte {offset}")
        yield data[start : start + length]
        offset = start + length + (-length % 4)


def frame_recordio(payload: bytes) -> bytes:
    """One RecordIO record: header, payload, zero padding to 4 bytes."""
    return _HEADER.pack(_RECORDIO_MAGIC, len(payload)) + payload + b"\x00" * (-len(payload) % 4)


def pack_requests(records: Sequence[bytes], strategy: str, split_type: str, max_bytes: int) -> list[list[int]]:
    """Group record indices into requests. MultiRecord packs greedily while the body stays within ``max_bytes``.

    RecordIO records are measured framed (the request carries a valid RecordIO stream). A record alone over the
    limit raises :class:`RecordError` (``max_bytes`` 0 means unbounded).
    """
    sizes = [len(frame_recordio(r)) if split_type == "RecordIO" else len(r) for r in records]
    limit = max_bytes or None
    batches: list[list[int]] = []
    current: list[int] = []
    current_size = 0
    for index, size in enumerate(sizes):
        if limit is not None and size > limit:
            raise RecordError(f"Record {index + 1} is larger than {max_bytes // (1024 * 1024)}MB ({size} bytes)")
        fits = limit is None or current_size + size <= limit
        if strategy == "MultiRecord" and current and fits:
            current.append(index)
            current_size += size
            continue
        if current:
            batches.append(current)
        current, current_size = [index], size
    if current:
        batches.append(current)
    return batches


def request_body(records: Sequence[bytes], indices: Sequence[int], split_type: str, strategy: str) -> bytes:
    if split_type == "RecordIO" and strategy == "MultiRecord":
        return b"".join(frame_recordio(records[i]) for i in indices)
    return b"".join(records[i] for i in indices)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class DataProcessing:
    """``InputFilter`` / ``JoinSource`` / ``OutputFilter`` for one job (defaults are no-ops)."""

    input_filter: str = "$"
    join_input: bool = False
    output_filter: str = "$"
    content_type: str = ""
    accept: str = ""

    @property
    def active(self) -> bool:
        return self.input_filter.strip() != "$" or self.join_input or self.output_filter.strip() != "$"

    def check(self, split_type: str, assemble_with: str) -> None:
        """The request-level rules: content types and CSV's Line/Line requirement (raises RecordError)."""
        if not self.active:
            return
        for label, value in (("ContentType", self.content_type), ("Accept", self.accept or self.content_type)):
            if media_type(value) not in _PROCESSABLE:
                raise RecordError(
                    f"DataProcessing needs {label} to be one of {', '.join(_PROCESSABLE)}, got {value or 'none'}"
                )
        if media_type(self.content_type) == CSV and (split_type != "Line" or assemble_with != "Line"):
            raise RecordError("DataProcessing with text/csv requires SplitType Line and AssembleWith Line")

    def filter_input(self, record: bytes) -> bytes:
        if self.input_filter.strip() == "$":
            return record
        kind = media_type(self.content_type)
        value = _filtered(self.input_filter, _parse(record, kind))
        return _dump(value, kind) + (b"\n" if record.endswith(b"\n") else b"")

    def finish(self, record: bytes, output: bytes) -> bytes:
        """Join ``output`` with the original ``record`` when asked, then apply the output filter."""
        if not self.join_input and self.output_filter.strip() == "$":
            return output.rstrip(b"\r\n")
        out_kind = media_type(self.accept or self.content_type)
        result = _parse(output, out_kind)
        if self.join_input:
            result = _join(_parse(record, media_type(self.content_type)), result, out_kind)
        return _dump(_filtered(self.output_filter, result), out_kind)


def _filtered(path: str, value: Any) -> Any:
    try:
        return select(path, value)
    except JsonPathError as exc:
        raise RecordError(f"JSONPath {path}: {exc}") from exc


def _join(record: Any, output: Any, kind: str) -> Any:
    if kind == CSV or (isinstance(record, list) and isinstance(output, list)):
        return [*_as_row(record), *_as_row(output)]
    if isinstance(record, dict):
        if "SageMakerOutput" in record:
            raise RecordError("SageMakerOutput is a reserved key and cannot appear in JSON input records")
        return {**record, "SageMakerOutput": output}
    return {"SageMakerInput": record, "SageMakerOutput": output}


def _as_row(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _parse(data: bytes, kind: str) -> Any:
    text = data.decode("utf-8").strip("\r\n")
    if kind == CSV:
        rows = list(csv.reader(io.StringIO(text)))
        if len(rows) != 1:
            raise RecordError(f"expected one CSV row per record, got {len(rows)}")
        return rows[0]
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RecordError(f"record is not valid JSON: {exc}") from exc


def _dump(value: Any, kind: str) -> bytes:
    if kind == CSV:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(_as_row(value))
        return buffer.getvalue().encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
