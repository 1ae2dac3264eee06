"""Request bodies for the model and its answers parsed into :class:`ModelOutput` (docs/clarify.md#analysis_configjson).

CSV: rows without header; ``label``/``probability`` are column indices; neither means every column is a score.
JSON Lines: ``content_template`` (default ``{"features":$features}``) per row; ``label``/``probability`` are
JMESPath per answer line. JSON: ``content_template`` with ``$records`` (default ``$records``), answers either a list
of records or a document the JMESPath expressions select lists from.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from containers.clarify.config import Column, PredictorConfig
from containers.clarify.dataset import _path_value
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["CsvRows", "ModelOutput", "decode_response", "encode_rows", "request_encoder"]

_BULK_ANSWER_BYTES = 16384  # CSV answers larger than this are parsed by pyarrow when they are plain numbers


@dataclass(frozen=True)
class ModelOutput:
    """What the model said for each row: scores ``(n, k)`` and/or labels ``(n,)``."""

    scores: np.ndarray | None
    labels: np.ndarray | None
    label_headers: tuple[str, ...] | None = None

    def __len__(self) -> int:
        values = self.labels if self.labels is not None else self.scores
        return 0 if values is None else len(values)

    def matrix(self) -> np.ndarray:
        """The numeric outputs SHAP and PDP explain: the scores, else the labels as numbers."""
        if self.scores is not None:
            return self.scores
        assert self.labels is not None
        try:
            return self.labels.astype(np.float64).reshape(-1, 1)
        except (TypeError, ValueError) as exc:
            raise UserError(
                "The model returns non-numeric labels only; SHAP and PDP need scores. "
                "Fix: set ModelPredictedLabelConfig(probability=...) so the scores are used."
            ) from exc

    def output_names(self) -> list[str]:
        width = self.matrix().shape[1]
        if self.label_headers and len(self.label_headers) == width:
            return list(self.label_headers)
        return [f"label{i}" for i in range(width)]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def _row_lists(frame: pd.DataFrame) -> list[list[Any]]:
    return frame.to_numpy().tolist() if len(set(frame.dtypes)) == 1 else frame.astype(object).to_numpy().tolist()


def _cell_text(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else repr(value)
    text = str(value)
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def _column_dictionary(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """``(codes, texts)``: each row's index into the column's distinct values (an integer array of any width),
    formatted once (SHAP and PDP batches repeat a few values millions of times)."""
    if isinstance(column.dtype, pd.CategoricalDtype):  # already coded (SHAP's composed rows): no hashing, no copy
        texts = [_cell_text(v.item() if hasattr(v, "item") else v) for v in column.cat.categories]
        codes = column.cat.codes.to_numpy()
        if len(codes) and codes.min() < 0:  # a missing value: the empty cell, after the categories
            codes = np.where(codes < 0, len(texts), codes)
            texts.append("")
        return codes, texts
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    return codes.astype(np.int32), [_cell_text(v.item() if hasattr(v, "item") else v) for v in uniques]


class CsvRows:
    """A frame as CSV rows without header, any range of rows at a time: each column's distinct values are formatted
    once for the whole frame (SHAP and PDP batches repeat a few values millions of times), each with the separator
    that follows it (``,``, or the line break after the last column). A range's body is then one gather of those
    cells, row after row: Arrow's ``take`` over one binary array of every column's cells, whose value buffer is the
    body. It runs in C++ without the GIL, so requests encoded in parallel threads use every core, and it copies each
    cell's bytes once (Arrow's CSV writer, used before, cost about three times as much)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        self._codes: list[np.ndarray] = []  # per column, each row's index into the column's cells
        self._firsts: list[int] = []  # per column, where its cells start in ``_cells``
        cells: list[bytes] = []
        for position, name in enumerate(frame.columns):
            codes, texts = _column_dictionary(frame[name])
            separator = "\n" if position == len(frame.columns) - 1 else ","
            self._codes.append(codes)
            self._firsts.append(len(cells))
            cells.extend((text + separator).encode("utf-8") for text in texts)
        self._cells = pa.array(cells, type=pa.large_binary())

    def encode(self, start: int, stop: int) -> bytes:
        """The CSV text of rows ``start:stop``."""
        if stop <= start or not self._codes:
            return b""
        import pyarrow as pa
        import pyarrow.compute as pc

        order = np.empty((stop - start, len(self._codes)), dtype=np.int32)  # row-major: the cells in body order
        for position, (codes, first) in enumerate(zip(self._codes, self._firsts, strict=True)):
            np.add(codes[start:stop], first, out=order[:, position], dtype=np.int32)
        gathered = pc.take(self._cells, pa.array(order.reshape(-1)))
        offsets = np.frombuffer(gathered.buffers()[1], dtype=np.int64)
        first, last = int(offsets[gathered.offset]), int(offsets[gathered.offset + len(gathered)])
        return gathered.buffers()[2].slice(first, last - first).to_pybytes()


def encode_csv(frame: pd.DataFrame) -> bytes:
    """CSV rows without header (see :class:`CsvRows`)."""
    return CsvRows(frame).encode(0, len(frame))


def request_encoder(frame: pd.DataFrame, config: PredictorConfig) -> Callable[[int, int], bytes]:
    """``(start, stop) -> body``: the request body for rows ``start:stop`` of ``frame``; for CSV every distinct value
    is formatted once, whatever the number of requests."""
    if config.content_type == "text/csv":
        return CsvRows(frame).encode
    return lambda start, stop: encode_rows(frame.iloc[start:stop], config)


def encode_rows(frame: pd.DataFrame, config: PredictorConfig) -> bytes:
    """The request body for ``frame``'s rows (feature columns only, in order)."""
    if config.content_type == "text/csv":
        return encode_csv(frame)
    rows = [json.dumps(row, default=_plain, separators=(",", ":")) for row in _row_lists(frame)]
    if config.content_type == "application/jsonlines":
        template = config.content_template or '{"features":$features}'
        return "\n".join(template.replace("$features", row) for row in rows).encode("utf-8")
    template = config.content_template or "$records"
    return template.replace("$records", "[" + ",".join(rows) + "]").encode("utf-8")


def _malformed(why: str) -> UserError:
    return UserError(
        f"The endpoint returned malformed predictions: {why}. Fix: check predictor.accept_type, "
        "predictor.label and predictor.probability against what the model answers."
    )


def _select(record: Any, where: Column) -> Any:
    if isinstance(where, int) and isinstance(record, list):
        return record[where] if -len(record) <= where < len(record) else None
    return _path_value(record, str(where))


def _score_matrix(values: Sequence[Any]) -> np.ndarray:
    try:
        matrix = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _malformed(f"scores are not numbers ({exc})") from exc
    if matrix.ndim == 1:
        matrix = matrix.reshape(-1, 1)
    if matrix.ndim != 2:
        raise _malformed(f"scores have shape {matrix.shape}")
    return matrix


def _from_records(records: Sequence[Any], config: PredictorConfig) -> ModelOutput:
    labels = scores = None
    if config.label is not None:
        picked = [_select(r, config.label) for r in records]
        if any(v is None for v in picked):
            raise _malformed(f"'predictor.label' ({config.label}) selects nothing in some answers")
        labels = np.array(picked, dtype=object)
    if config.probability is not None:
        picked = [_select(r, config.probability) for r in records]
        if any(v is None for v in picked):
            raise _malformed(f"'predictor.probability' ({config.probability}) selects nothing in some answers")
        scores = _score_matrix(picked)
    if labels is None and scores is None:
        scores = _score_matrix(list(records))
    if labels is not None and labels.size and isinstance(labels[0], list):
        return ModelOutput(scores, None, config.label_headers or tuple(map(str, labels[0])))
    return ModelOutput(scores, labels, config.label_headers)


def _numbers_by_arrow(payload: bytes) -> np.ndarray | None:
    """A large answer of plain numbers (no quotes, no spaces, no words; empty cells NaN) as a float64 ``(rows,
    columns)`` matrix parsed by pyarrow in one call, correctly rounded as ``float`` is; None for anything else, which
    pandas then reads as before."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if payload.startswith(b"\xef\xbb\xbf"):  # pyarrow skips a byte-order mark, pandas keeps it in the first cell
        return None
    names = [f"c{i}" for i in range(payload[: payload.find(b"\n")].count(b",") + 1)]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(payload),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.float64()), null_values=[""], strings_can_be_null=False
            ),
        )
        matrix = np.asarray(table.to_tensor(null_to_nan=True, row_major=True))
    except (pa.ArrowException, ValueError):
        return None
    return matrix if matrix.flags.writeable else matrix.copy()


def _decode_csv(text: str, config: PredictorConfig, payload: bytes) -> ModelOutput:
    if not text.strip():
        raise _malformed("the answer is empty")
    if config.label is None and config.probability is None and len(payload) > _BULK_ANSWER_BYTES:
        numbers = _numbers_by_arrow(payload)
        if numbers is not None and len(numbers):
            return ModelOutput(numbers, None, config.label_headers)
    frame = pd.read_csv(io.StringIO(text), header=None, skipinitialspace=True)
    if config.label is None and config.probability is None:
        if all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
            return ModelOutput(frame.to_numpy(dtype=np.float64), None, config.label_headers)
        return ModelOutput(None, frame.iloc[:, 0].to_numpy(dtype=object), config.label_headers)
    return _from_records(frame.astype(object).to_numpy().tolist(), config)


def _decode_json(text: str, config: PredictorConfig) -> ModelOutput:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _malformed(f"not JSON ({exc})") from exc
    if isinstance(document, list):
        return _from_records(document, config)
    if isinstance(document, dict) and isinstance(document.get("predictions"), list):
        return _from_records(document["predictions"], config)
    labels = _path_value(document, str(config.label)) if config.label is not None else None
    scores = _path_value(document, str(config.probability)) if config.probability is not None else None
    if labels is None and scores is None:
        raise _malformed("no list of predictions found in the JSON answer")
    return ModelOutput(
        _score_matrix(scores) if scores is not None else None,
        np.array(labels, dtype=object) if labels is not None else None,
        config.label_headers,
    )


def decode_response(payload: bytes, config: PredictorConfig) -> ModelOutput:
    """Parse the model's answer by ``accept_type``."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed("the answer is not UTF-8") from exc
    if config.accept_type == "text/csv":
        return _decode_csv(text, config, payload)
    if config.accept_type == "application/jsonlines":
        try:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise _malformed(f"a line is not JSON ({exc})") from exc
        return _from_records(records, config)
    return _decode_json(text, config)
