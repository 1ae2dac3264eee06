"""Serving-side codecs: request bodies into feature batches, prediction rows into response bodies.

Request forms: docs/algorithms/xgboost.md#inference (CSV, LIBSVM, recordIO) and docs/algorithms/kmeans.md#inference
(also JSON, JSON Lines).
Bodies that cannot be parsed as their content type give 415 (as XGBoost answers); well-formed bodies that do not
describe a feature matrix give 400.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from containers.toolkit.codecs import content_types as ct
from containers.toolkit.codecs._writer import encode_label_records
from containers.toolkit.codecs.batch import Batch, densify
from containers.toolkit.codecs.recordio import read_recordio
from containers.toolkit.codecs.tabular import sniff_delimiter
from containers.toolkit.errors import BadRequestError, UnsupportedMediaTypeError, UserError

logger = logging.getLogger(__name__)

RowValue = float | Sequence[float] | np.ndarray
_NAN = math.nan
_BULK_BYTES = 16384
_THREADED_BYTES = 1 << 20  # bodies larger than this are parsed on all of Arrow's threads


# ----------------------------------------------------------------------------------------------- CSV


def _csv_row(line: str, delimiter: str) -> list[float]:
    return [float(cell) if cell.strip() else _NAN for cell in line.split(delimiter)]


def _arrow_table(body: bytes, delimiter: str, types: dict[str, Any], *, null_values: list[str]) -> Any:
    """``body`` parsed by pyarrow.csv into columns of ``types``, accepting no more than Python's ``float``/``int``
    do (no quoting, no null words); raises pyarrow's error."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.read_csv(
        pa.py_buffer(body),
        read_options=pacsv.ReadOptions(column_names=list(types), use_threads=len(body) > _THREADED_BYTES),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=False),
        convert_options=pacsv.ConvertOptions(
            column_types=types, null_values=null_values, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )


def _csv_by_arrow(body: bytes, delimiter: str, width: int) -> np.ndarray | None:
    """The body as a float64 ``(rows, width)`` matrix parsed by pyarrow (C++, one call; empty cells are NaN), or
    None when pyarrow does not read it cleanly; the exact path then decides and names the problem."""
    import pyarrow as pa

    try:
        table = _arrow_table(body, delimiter, {f"f{i}": pa.float64() for i in range(width)}, null_values=[""])
        matrix = np.asarray(table.to_tensor(null_to_nan=True, row_major=True))
    except (pa.ArrowException, ValueError):
        return None
    return matrix if matrix.flags.writeable else matrix.copy()


def _arrow_reads_as_lines_do(body: bytes) -> bool:
    """pyarrow also breaks lines at a lone ``\\r`` and skips a byte-order mark, which the exact path does not."""
    if body.startswith(b"\xef\xbb\xbf"):
        return False
    return b"\r" not in body or body.count(b"\r") == body.count(b"\r\n")


def decode_csv(body: bytes) -> np.ndarray:
    """CSV without a label column: rows on ``\\n``, delimiter sniffed on the first line, empty cells → NaN.

    Bodies over ``_BULK_BYTES`` are parsed by pyarrow in one call (correctly rounded, as ``float`` is); anything it
    does not read cleanly goes through the line-by-line path, which accepts or names the problem."""
    try:
        text = body.strip().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaTypeError(f"Loading csv data failed: the body is not UTF-8 ({exc}).") from exc
    if not text:
        raise BadRequestError("The request body is empty.")
    first_end = text.find("\n")
    first = text if first_end < 0 else text[:first_end]
    delimiter = sniff_delimiter(first)
    if len(body) > _BULK_BYTES and len(delimiter) == 1 and _arrow_reads_as_lines_do(body):
        bulk = _csv_by_arrow(body, delimiter, len(first.split(delimiter)))
        if bulk is not None and bulk.shape[0]:
            return bulk
        logger.debug("bulk CSV parse failed; parsing the body line by line")
    lines = [line for line in text.split("\n") if line.strip()]
    try:
        rows = [_csv_row(line, delimiter) for line in lines]
    except ValueError as exc:
        raise UnsupportedMediaTypeError(f"Loading csv data failed, please ensure data is in csv format: {exc}") from exc
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise BadRequestError(f"CSV line {number} has {len(row)} values; line 1 has {width}.")
    return np.array(rows, dtype=np.float64)


# ----------------------------------------------------------------------------------------------- LIBSVM


def _libsvm_tokens(body: bytes) -> tuple[list[bytes], list[int]]:
    """Every line's ``index:value`` tokens (a leading label token without ``:`` dropped) and each line's count; blank
    lines are skipped."""
    tokens: list[bytes] = []
    counts: list[int] = []
    for line in body.split(b"\n"):
        words = line.split()
        if not words:
            continue
        if b":" not in words[0]:
            del words[0]
        tokens.extend(words)
        counts.append(len(words))
    return tokens, counts


def _libsvm_by_arrow(body: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(indices, values, indptr) with the tokens parsed by pyarrow in one call (each ``index:value`` a two-column
    CSV line), or None when a token is not a plain ``int:float`` pair (the exact path then names it)."""
    import pyarrow as pa

    if b"#" in body or not body.isascii():
        return None  # comments, or text the exact path must check is UTF-8
    tokens, counts = _libsvm_tokens(body)
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    if not tokens:
        return np.zeros(0, dtype=np.int64), np.zeros(0), indptr
    try:
        table = _arrow_table(b"\n".join(tokens), ":", {"index": pa.int64(), "value": pa.float64()}, null_values=[])
        indices = table.column("index").to_numpy()
        values = table.column("value").to_numpy()
    except (pa.ArrowException, ValueError):
        return None
    if len(indices) != len(tokens):
        return None
    return indices, np.array(values, dtype=np.float64), indptr


def _libsvm_by_lines(body: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, values, indptr) token by token; raises UnsupportedMediaTypeError naming what is wrong."""
    indptr = [0]
    indices: list[int] = []
    values: list[float] = []
    try:
        for line in body.decode("utf-8").split("\n"):
            tokens = line.split("#", 1)[0].split()
            if not tokens:
                continue
            if ":" not in tokens[0]:
                tokens = tokens[1:]
            for token in tokens:
                index, _, value = token.partition(":")
                indices.append(int(index))
                values.append(float(value))
            indptr.append(len(indices))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnsupportedMediaTypeError(
            f"Loading libsvm data failed, please ensure data is in libsvm format: {exc}"
        ) from exc
    return np.array(indices, dtype=np.int64), np.array(values, dtype=np.float64), np.array(indptr, dtype=np.int64)


def decode_libsvm(body: bytes) -> sp.csr_matrix:
    """``index:value`` tokens per line; a leading label token (no ``:``) is ignored.

    Indices are kept as written, exactly as the training reader keeps them (``codecs/tabular.py``) and as AWS's
    XGBoost container reads LIBSVM on both sides: a model trained on 1-based rows has an unused column 0 and is
    served 1-based rows. Shifting here would move every feature one column left, silently
    (docs/containers.md#codecs-toolkitcodecs). Bodies over ``_BULK_BYTES`` have their tokens parsed by pyarrow in one
    call; any token it does not read cleanly sends the body through the token-by-token path.
    """
    parsed = _libsvm_by_arrow(body) if len(body) > _BULK_BYTES else None
    indices, values, indptr = parsed if parsed is not None else _libsvm_by_lines(body)
    if len(indptr) == 1:
        raise BadRequestError("The request body is empty.")
    if indices.size and indices.min() < 0:
        raise BadRequestError(f"LIBSVM feature index {int(indices.min())} is negative.")
    width = int(indices.max()) + 1 if indices.size else 0
    return sp.csr_matrix((values, indices, indptr), shape=(len(indptr) - 1, width))


# ----------------------------------------------------------------------------------------------- JSON


def _sparse_instance(features: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
    keys = np.asarray(features["keys"], dtype=np.int64)
    values = np.asarray(features["values"], dtype=np.float64)
    shape = features.get("shape")
    width = int(shape[0]) if shape else (int(keys.max()) + 1 if keys.size else 0)
    if keys.shape != values.shape or keys.ndim != 1:
        raise BadRequestError("A sparse instance needs as many keys as values.")
    if keys.size and (keys.min() < 0 or keys.max() >= width):
        raise BadRequestError(f"Sparse key {int(keys.max())} is out of range for shape {shape}.")
    return keys, values, width


def _instance_features(instance: Any) -> Any:
    """The feature part of one instance in any of the accepted forms."""
    if isinstance(instance, Mapping):
        if "features" in instance:
            return instance["features"]
        data = instance.get("data")
        if isinstance(data, Mapping) and "features" in data:
            return data["features"]
        raise BadRequestError('An instance must have "features" or "data": {"features": ...}.')
    return instance


def _rows_from_instances(instances: Sequence[Any]) -> Batch:
    dense: list[np.ndarray] = []
    sparse: list[tuple[np.ndarray, np.ndarray, int]] = []
    for instance in instances:
        features = _instance_features(instance)
        if isinstance(features, Mapping):
            if "keys" in features:
                sparse.append(_sparse_instance(features))
                dense.append(np.empty(0))
                continue
            features = features.get("values")
        row = np.asarray(features, dtype=np.float64)
        if row.ndim != 1:
            raise BadRequestError("Each instance must be a flat list of numbers.")
        dense.append(row)
        sparse.append((np.arange(row.size), row, row.size))
    if not instances:
        raise BadRequestError("The request has no instances.")
    if all(len(keys) == len(row) and width == len(row) for (keys, _, width), row in zip(sparse, dense, strict=True)):
        widths = {row.size for row in dense}
        if len(widths) > 1:
            raise BadRequestError(f"Instances have different numbers of features: {sorted(widths)}.")
        return Batch(np.vstack(dense), None)
    width = max(item[2] for item in sparse)
    indptr = np.cumsum([0] + [item[0].size for item in sparse])
    matrix = sp.csr_matrix(
        (np.concatenate([item[1] for item in sparse]), np.concatenate([item[0] for item in sparse]), indptr),
        shape=(len(sparse), width),
    )
    return Batch(matrix, None)


def _instances(document: Any) -> Sequence[Any]:
    if isinstance(document, Mapping):
        if "instances" not in document:
            raise BadRequestError('A JSON request must be {"instances": [...]} or a list of rows.')
        document = document["instances"]
    if not isinstance(document, list):
        raise BadRequestError("The JSON instances must be a list.")
    if document and all(isinstance(item, int | float) and not isinstance(item, bool) for item in document):
        return [document]  # one bare row
    return document


def decode_json(body: bytes) -> Batch:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnsupportedMediaTypeError(f"Loading json data failed, please ensure data is valid JSON: {exc}") from exc
    return _checked(lambda: _rows_from_instances(_instances(document)))


def decode_jsonlines(body: bytes) -> Batch:
    instances: list[Any] = []
    try:
        for line in body.decode("utf-8").splitlines():
            if line.strip():
                instances.append(json.loads(line))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnsupportedMediaTypeError(
            f"Loading jsonlines data failed, please ensure one JSON object per line: {exc}"
        ) from exc
    return _checked(lambda: _rows_from_instances(instances))


def _checked(build: Callable[[], Batch]) -> Batch:
    try:
        return build()
    except (TypeError, ValueError, KeyError) as exc:
        raise BadRequestError(f"The request does not describe rows of numbers: {exc}") from exc


# ----------------------------------------------------------------------------------------------- facade


def _decode_recordio(body: bytes) -> Batch:
    try:
        batch = read_recordio(body, source="the request body")
    except UserError as exc:
        raise BadRequestError(exc.message) from exc
    if batch.n_rows == 0:
        raise BadRequestError("The request has no records with features.")
    return Batch(batch.features, None)


def decode_request(body: bytes, content_type: str) -> Batch:
    """Decode an ``/invocations`` body of any supported content type into features (``labels`` is always None)."""
    media = ct.parse_media_type(content_type or "")
    if media.type == ct.CSV:
        return Batch(decode_csv(body), None)
    if media.type == ct.LIBSVM:
        return Batch(decode_libsvm(body), None)
    if media.type == ct.RECORDIO_PROTOBUF:
        return _decode_recordio(body)
    if media.type == ct.JSON:
        return decode_json(body)
    if media.type == ct.JSONLINES:
        return decode_jsonlines(body)
    raise UnsupportedMediaTypeError(f"Content-type {content_type} is not supported.")


def decode_dense_request(body: bytes, content_type: str, feature_dim: int) -> np.ndarray:
    """Decode a request into a finite float64 ``(n, feature_dim)`` matrix (K-Means, PCA, ...).

    Dense rows must have exactly ``feature_dim`` values; sparse rows (recordIO, JSON ``keys``) are zero-padded and
    must not use a key ``>= feature_dim``. Raises BadRequestError (400) on a width or value problem.
    """
    features = decode_request(body, content_type).features
    width = int(features.shape[1])
    if sp.issparse(features):
        if width > feature_dim:
            raise BadRequestError(f"Feature index {width - 1} is out of range for feature_dim={feature_dim}.")
    elif width != feature_dim:
        raise BadRequestError(f"Records have {width} features; the model expects feature_dim={feature_dim}.")
    matrix = densify(features, feature_dim)
    if not np.isfinite(matrix).all():
        raise BadRequestError("Records contain NaN, infinite or missing values.")
    return matrix


def _number(value: Any) -> float:
    """A JSON-friendly float; float32 values keep their short form (``0.1`` rather than ``0.10000000149011612``)."""
    if isinstance(value, np.float32):
        return float(str(value))
    return float(value)


def _plain(value: RowValue) -> float | list[float]:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _number(value[()])
    if isinstance(value, np.ndarray | list | tuple):
        return [_number(item) for item in np.asarray(value).ravel()]
    return _number(value)


def _csv_line(row: Mapping[str, RowValue]) -> str:
    cells: list[str] = []
    for value in row.values():
        plain = _plain(value)
        cells.extend(repr(item) for item in (plain if isinstance(plain, list) else [plain]))
    return ",".join(cells)


def encode_rows(rows: Sequence[Mapping[str, RowValue]], accept: str, *, json_root: str) -> bytes:
    """Encode prediction rows for a negotiated ``accept`` type.

    JSON ``{json_root: [row, ...]}``; JSON Lines one row object per line; CSV one line per row with the values in
    key order (lists flattened); recordIO one Record per row with each key a float32 ``label`` tensor.
    """
    media = ct.parse_media_type(accept).type
    if media == ct.JSON:
        plain = [{key: _plain(value) for key, value in row.items()} for row in rows]
        return json.dumps({json_root: plain}).encode("utf-8")
    if media == ct.JSONLINES:
        lines = [json.dumps({key: _plain(value) for key, value in row.items()}) + "\n" for row in rows]
        return "".join(lines).encode("utf-8")
    if media == ct.CSV:
        return "".join(_csv_line(row) + "\n" for row in rows).encode("utf-8")
    if media == ct.RECORDIO_PROTOBUF:
        return encode_label_records(rows)
    raise UnsupportedMediaTypeError(f"Accept type {accept} cannot be encoded.")
