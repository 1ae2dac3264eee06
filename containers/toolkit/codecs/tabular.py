"""Training-side readers for CSV, LIBSVM and Parquet files (docs/algorithms/xgboost.md#channels-and-content-types):
streamed in row batches.

All formats have no header and the label in the first column (``has_label=False``: no label column). Malformed
input raises :class:`UserError` naming the file and the 1-based line (``..., <file>, line <n>: <what>``).

CSV is read in pieces of about ``CSV_BLOCK_BYTES`` cut at line breaks (bounded memory), each parsed by
``pyarrow.csv.read_csv`` on all the Arrow threads (the streaming ``open_csv`` reader parses on one thread) with every
column float64, and turned into a row-major matrix by Arrow (``to_tensor``; ``to_numpy`` on a chunked column would
import pandas). When pyarrow reports a problem (a non-numeric cell, a row with another number of values, stray spaces),
the file is read again with pandas, which either accepts it (its parser is more lenient) or names the line; the rows
already delivered are not delivered twice. pandas and ``pyarrow.parquet`` are imported only when needed.
"""

from __future__ import annotations

import csv
import itertools
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from containers.toolkit.codecs._buffers import read_block_after
from containers.toolkit.codecs.batch import Batch, slice_batch
from containers.toolkit.errors import UserError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

logger = logging.getLogger(__name__)

_LINE_SEARCH_BYTES = 1 << 16
CSV_BLOCK_BYTES = 16 << 20  # bytes of CSV text pyarrow parses at a time: bounded memory, large BLAS-friendly batches

_NUMBER_CHARS = set(".+-")
_LINE_IN_MESSAGE = re.compile(r"line (\d+)")
_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def sniff_delimiter(line: str) -> str:
    """The delimiter of a CSV line, as XGBoost finds it: ``csv.Sniffer``, falling back to ``,`` when the sniffed
    character could be part of a number (alphanumeric, ``.``, ``+``, ``-``) or nothing is found."""
    if "," in line:
        return ","
    try:
        delimiter = csv.Sniffer().sniff(line).delimiter
    except csv.Error:
        return ","
    if delimiter.isalnum() or delimiter in _NUMBER_CHARS:
        return ","
    return delimiter


def split_label(matrix: np.ndarray, has_label: bool) -> Batch:
    if not has_label:
        return Batch(matrix, None)
    return Batch(matrix[:, 1:], matrix[:, 0].copy())


# ----------------------------------------------------------------------------------------------- CSV


def _first_line(path: Path) -> str:
    with path.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                return raw.decode("utf-8", errors="replace").strip()
    return ""


def _bad_cell(frame: pd.DataFrame) -> tuple[int, int, str]:
    """(row label, 0-based column, text) of the first cell that is not a number."""
    import pandas as pd

    for column_number, column in enumerate(frame.columns):
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series.dtype):
            continue
        coerced = pd.to_numeric(series, errors="coerce")
        bad = coerced.isna() & series.notna()
        if bad.any():
            row = bad.idxmax()
            return int(row), column_number, str(series[row])
    raise AssertionError("no non-numeric cell found")  # pragma: no cover - only called after a failed conversion


def _csv_chunk(frame: pd.DataFrame, path: Path) -> np.ndarray:
    try:
        matrix = frame.to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        row, column, text = _bad_cell(frame)
        raise UserError(
            f"Could not read CSV data in {path}, line {row + 1}: column {column + 1} has the non-numeric value "
            f"{text!r}."
        ) from exc
    blank = np.isnan(matrix).all(axis=1)
    return matrix[~blank] if blank.any() else matrix


def _parser_error(exc: Exception, path: Path) -> UserError:
    text = str(exc).strip()
    fields = _FIELD_COUNT.search(text)
    if fields:
        expected, line, seen = fields.groups()
        return UserError(f"Could not read CSV data in {path}, line {line}: expected {expected} values, found {seen}.")
    found = _LINE_IN_MESSAGE.search(text)
    where = f", line {found.group(1)}" if found else ""
    return UserError(f"Could not read CSV data in {path}{where}: {text}")


class _ArrowCannotRead(Exception):
    """pyarrow stopped on something the pandas path either accepts or names the line of."""


def _drop_blank_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows whose values are all missing (``,,``) are skipped, as the pandas path does with blank lines."""
    if matrix.shape[1] == 0:
        return matrix
    candidates = np.flatnonzero(np.isnan(matrix[:, 0]))  # only these can be blank: a cheap first filter
    if candidates.size == 0:
        return matrix
    blank = candidates[np.isnan(matrix[candidates]).all(axis=1)]
    return np.delete(matrix, blank, axis=0) if blank.size else matrix


def _table_matrix(table: pa.Table) -> np.ndarray:
    """The float64 columns as one C-contiguous ``(rows, columns)`` matrix; nulls (empty cells) become NaN."""
    matrix = np.asarray(table.to_tensor(null_to_nan=True, row_major=True))
    if not matrix.flags.writeable:  # pragma: no cover - Arrow hands over its own buffer; keep callers free to write
        matrix = matrix.copy()
    return _drop_blank_rows(matrix)


def _line_break_end(text: bytes | bytearray | memoryview) -> int:
    """Length of the prefix of ``text`` that ends with its last line break (0 when it holds none)."""
    view = memoryview(text)
    for mark in (b"\n", b"\r"):  # "\r" alone: old Mac line ends
        stop = len(view)
        while stop > 0:  # from the end, a window at a time: the break is almost always in the last line
            start = max(0, stop - _LINE_SEARCH_BYTES)
            found = view[start:stop].tobytes().rfind(mark)
            if found >= 0:
                return start + found + 1
            stop = start
    return 0


def _text_pieces(path: Path) -> Iterator[memoryview]:
    """The file's bytes in pieces of about ``CSV_BLOCK_BYTES`` that end at a line break (except at the file's end).

    A line longer than the block is kept whole: the piece grows until a line break or the end of the file. Each
    piece is read into a new uninitialised block (nothing parsed from an earlier one changes).
    """
    with path.open("rb") as handle:
        pending: bytes | bytearray | memoryview = b""
        while True:
            text = read_block_after(handle, pending, CSV_BLOCK_BYTES)
            if len(text) - len(pending) < CSV_BLOCK_BYTES:  # a short read is the end of the file: one last piece
                if text:
                    yield text
                return
            cut = _line_break_end(text)
            if cut:
                yield text[:cut]
            pending = text[cut:]


def _arrow_csv_matrices(path: Path, separator: str) -> Iterator[np.ndarray]:
    """The file as float64 matrices of about ``CSV_BLOCK_BYTES`` of text each; raises _ArrowCannotRead."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    first = _first_line(path)
    if not first:
        return
    names = [f"f{number}" for number in range(len(first.split(separator)))]
    read_options = pacsv.ReadOptions(column_names=names)
    parse_options = pacsv.ParseOptions(delimiter=separator)
    convert_options = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float64()))
    try:
        for text in _text_pieces(path):
            table = pacsv.read_csv(
                pa.py_buffer(text),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
            if table.num_rows:
                yield _table_matrix(table)
    except (pa.ArrowException, ValueError) as exc:
        raise _ArrowCannotRead(str(exc)) from exc


def _pandas_csv_batches(path: Path, batch_rows: int, has_label: bool, separator: str) -> Iterator[Batch]:
    import pandas as pd

    try:
        reader = pd.read_csv(
            path,
            sep=separator,
            header=None,
            chunksize=batch_rows,
            skip_blank_lines=False,
            engine="c",
            encoding="utf-8",
        )
        with reader:
            for frame in reader:
                matrix = _csv_chunk(frame, path)
                if matrix.shape[0]:
                    yield split_label(matrix, has_label)
    except pd.errors.EmptyDataError:
        return
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _parser_error(exc, path) from exc


def _skip_rows(batches: Iterator[Batch], rows: int) -> Iterator[Batch]:
    for batch in batches:
        if rows >= batch.n_rows:
            rows -= batch.n_rows
            continue
        yield slice_batch(batch, rows, batch.n_rows) if rows else batch
        rows = 0


def iter_csv_batches(
    path: Path, batch_rows: int, *, has_label: bool = True, delimiter: str | None = None
) -> Iterator[Batch]:
    """Stream a header-less CSV file; empty cells become NaN and lines with no values are skipped.

    Batches hold at most ``batch_rows`` rows (callers that need exact sizes re-cut them, see ``rebatch``).
    """
    separator = delimiter or sniff_delimiter(_first_line(path))
    logger.debug("reading %s as CSV with delimiter %r", path, separator)
    delivered = 0
    if len(separator) == 1:
        try:
            for matrix in _arrow_csv_matrices(path, separator):
                for start in range(0, matrix.shape[0], batch_rows):
                    piece = matrix[start : start + batch_rows]
                    delivered += piece.shape[0]
                    yield split_label(piece, has_label)
            return
        except _ArrowCannotRead as exc:
            logger.debug("pyarrow stopped in %s after %d rows (%s); reading it with pandas", path, delivered, exc)
    yield from _skip_rows(_pandas_csv_batches(path, batch_rows, has_label, separator), delivered)


# ----------------------------------------------------------------------------------------------- LIBSVM


class _SparseRows:
    """Accumulates LIBSVM rows into CSR arrays."""

    def __init__(self) -> None:
        self.indptr: list[int] = [0]
        self.indices: list[int] = []
        self.values: list[float] = []
        self.labels: list[float] = []
        self.weights: list[float] = []

    def to_batch(self, has_label: bool, n_features: int | None) -> Batch:
        width = max(self.indices, default=-1) + 1
        if n_features is not None:
            width = max(width, n_features)
        matrix = sp.csr_matrix(
            (np.array(self.values, dtype=np.float64), np.array(self.indices, dtype=np.int64), self.indptr),
            shape=(len(self.indptr) - 1, width),
        )
        labels = np.array(self.labels, dtype=np.float64) if has_label else None
        weights = np.array(self.weights, dtype=np.float64) if self.weights else None
        return Batch(matrix, labels, weights)


def _parse_label(token: str, rows: _SparseRows) -> None:
    label, sep, weight = token.partition(":")
    rows.labels.append(float(label))
    if sep:
        if len(rows.weights) != len(rows.labels) - 1:
            raise ValueError("only some rows have an instance weight")
        rows.weights.append(float(weight))
    elif rows.weights:
        raise ValueError("only some rows have an instance weight")


def parse_libsvm_line(line: str, rows: _SparseRows, *, has_label: bool, n_features: int | None) -> None:
    """Append one ``label[:weight] index:value ...`` line; raises ValueError with what is wrong."""
    tokens = line.split("#", 1)[0].split()
    if has_label:
        if not tokens:
            raise ValueError("missing label")
        _parse_label(tokens[0], rows)
        tokens = tokens[1:]
    elif tokens and ":" not in tokens[0]:
        tokens = tokens[1:]
    for token in tokens:
        index_text, sep, value_text = token.partition(":")
        if not sep:
            raise ValueError(f"token {token!r} is not index:value")
        if index_text == "qid":
            continue
        index = int(index_text)
        if index < 0 or (n_features is not None and index >= n_features):
            raise ValueError(f"feature index {index} is out of range")
        rows.indices.append(index)
        rows.values.append(float(value_text))
    rows.indptr.append(len(rows.indices))


def iter_libsvm_batches(
    path: Path, batch_rows: int, *, has_label: bool = True, n_features: int | None = None
) -> Iterator[Batch]:
    """Stream a LIBSVM file as CSR batches; the ``label:weight`` form sets ``weights``.

    Indices are kept as written (no shift); blank lines are skipped; ``qid:`` tokens are ignored.

    Batch width is ``max(index) + 1`` of the batch, or ``n_features`` when given (larger indices are an error).
    """
    with path.open("r", encoding="utf-8") as handle:
        numbered = ((number, line) for number, line in enumerate(handle, start=1) if line.strip())
        while True:
            chunk = list(itertools.islice(numbered, batch_rows))
            if not chunk:
                return
            rows = _SparseRows()
            for number, line in chunk:
                try:
                    parse_libsvm_line(line, rows, has_label=has_label, n_features=n_features)
                except ValueError as exc:
                    raise UserError(f"Could not read LIBSVM data in {path}, line {number}: {exc}.") from exc
            yield rows.to_batch(has_label, n_features)


# ----------------------------------------------------------------------------------------------- Parquet


def _column_values(column: pa.Array | pa.ChunkedArray, name: str, path: Path) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
        if not pa.types.is_decimal(kind):
            raise UserError(f"Could not read Parquet data in {path}: column {name!r} has non-numeric type {kind}.")
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)


def iter_parquet_batches(path: Path, batch_rows: int, *, has_label: bool = True) -> Iterator[Batch]:
    """Stream a Parquet file; column 0 is the label, nulls become NaN."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"Could not read Parquet data in {path}: {exc}") from exc
    with parquet:
        for record_batch in parquet.iter_batches(batch_size=batch_rows):
            if record_batch.num_rows == 0:
                continue
            columns = [
                _column_values(record_batch.column(i), name, path) for i, name in enumerate(record_batch.schema.names)
            ]
            yield split_label(np.column_stack(columns), has_label)
