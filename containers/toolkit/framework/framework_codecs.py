"""The request and response codecs of the framework inference toolkits: JSON, CSV and NPY (and NPZ for PyTorch).

The framework containers' default ``input_fn``/``output_fn`` decode a request into a numpy array and encode a
prediction back (docs/containers.md, "Framework containers"). A content type outside the table raises
:class:`UnsupportedFormatError`; the handler turns it into the status the framework's toolkit answers with.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from containers.toolkit.errors import BadRequestError, ToolkitError

logger = logging.getLogger(__name__)

__all__ = [
    "CSV",
    "JSON",
    "NPY",
    "NPZ",
    "UTF8_TYPES",
    "UnsupportedFormatError",
    "decode",
    "encode",
    "first_supported",
]

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
NPZ = "application/x-npz"
UTF8_TYPES = (JSON, CSV)  # handed to input_fn as text, every other type as bytes


class UnsupportedFormatError(ToolkitError):
    """A content type the default functions cannot read or write (the toolkits' own name and message)."""

    def __init__(self, content_type: str) -> None:
        super().__init__(
            f"Content type {content_type} is not supported by this framework. Please implement input_fn to "
            "deserialize the request data or an output_fn to serialize the response."
        )
        self.content_type = content_type


def _text(data: str | bytes) -> str:
    return data.decode("utf-8") if isinstance(data, bytes) else data


def _json_to_numpy(data: str | bytes) -> np.ndarray:
    try:
        return np.array(json.loads(_text(data)))
    except ValueError as exc:
        raise BadRequestError(f"Error while decoding json: {exc}") from exc


def _csv_to_numpy(data: str | bytes) -> np.ndarray:
    """Rows of strings, squeezed, as the scikit-learn container's decoder gives them (input_fn casts them)."""
    try:
        rows = list(csv.reader(io.StringIO(_text(data)), delimiter=",", quotechar='"', doublequote=True, strict=True))
        return np.array(rows).squeeze()
    except (csv.Error, ValueError) as exc:
        raise BadRequestError(f"Error while decoding csv: {exc}") from exc


def _npy_to_numpy(data: str | bytes) -> np.ndarray:
    raw = data.encode("latin1") if isinstance(data, str) else data
    try:
        return np.asarray(np.load(io.BytesIO(raw), allow_pickle=False))
    except (ValueError, OSError, EOFError) as exc:
        raise BadRequestError(f"Error while decoding npy: {exc}") from exc


def _npz_to_sparse(data: str | bytes) -> Any:
    import scipy.sparse

    raw = data.encode("latin1") if isinstance(data, str) else data
    try:
        return scipy.sparse.load_npz(io.BytesIO(raw))
    except (ValueError, OSError, KeyError) as exc:
        raise BadRequestError(f"Error while decoding npz: {exc}") from exc


_DECODERS: Mapping[str, Callable[[str | bytes], Any]] = {
    JSON: _json_to_numpy,
    CSV: _csv_to_numpy,
    NPY: _npy_to_numpy,
    NPZ: _npz_to_sparse,
}


def decode(data: str | bytes, content_type: str, supported: tuple[str, ...] = (JSON, CSV, NPY)) -> Any:
    """Decode a request body of ``content_type`` (one of ``supported``) into a numpy array."""
    if content_type not in supported:
        raise UnsupportedFormatError(content_type)
    return _DECODERS[content_type](data)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _to_csv(value: Any) -> bytes:
    array = np.array(value)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(array.shape[0], 1)
    stream = io.StringIO()
    csv.writer(stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True).writerows(array.tolist())
    return stream.getvalue().encode("utf-8")


def _to_npy(value: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(value), allow_pickle=False)
    return buffer.getvalue()


_ENCODERS: Mapping[str, Callable[[Any], bytes]] = {
    JSON: lambda value: json.dumps(value, default=_jsonable).encode("utf-8"),
    CSV: _to_csv,
    NPY: _to_npy,
}


def encode(value: Any, accept: str) -> bytes:
    """Encode a prediction (array-like) as ``accept`` (JSON, CSV or NPY)."""
    encoder = _ENCODERS.get(accept)
    if encoder is None:
        raise UnsupportedFormatError(accept)
    return encoder(value)


def first_supported(accept: str) -> str:
    """The first media type of an ``Accept`` list the encoders write (PyTorch's toolkit tries them in order)."""
    for part in accept.split(","):
        name = part.split(";", 1)[0].strip().lower()
        if name in _ENCODERS:
            return name
    raise UnsupportedFormatError(accept)
