"""MXNet NDArray-list files, the layout of the AWS ``model_algo-1`` artifacts, written and read with numpy
(docs/algorithms/kmeans.md#model-artifact).

Layout, all little-endian, as MXNet's ``NDArray::Save`` writes it: ``uint64 0x112`` (list magic), ``uint64 0``
(reserved), ``uint64 n_arrays``; per array ``uint32 0xF993FAC9`` (V2 magic), ``int32 stype`` (0 = dense), ``int32
ndim`` + ``ndim x int64`` dims, context (``int32 dev_type`` = 1 cpu, ``int32 dev_id`` = 0), ``int32 type_flag``
(mshadow's: 0 float32, 1 float64, 2 float16, 3 uint8, 4 int32, 5 int8, 6 int64, 7 bool, 8 int16, 9 uint16, 10
uint32, 11 uint64), the raw row-major data; then ``uint64 n_names`` and per name ``uint64 length`` + UTF-8 bytes.
``mx.nd.load`` returns a list when there are no names and a dict otherwise.

With the V2 magic an array of ``ndim`` 0 is MXNet's "none" array: nothing follows its shape, so a numpy scalar is
written with shape ``(1,)``. The reader also takes the other layouts MXNet loads: the
V3 magic ``0xF993FACA`` (NumPy shape semantics, dense, same fields), V1 ``0xF993FAC8`` (no storage type) and the
legacy one whose first word is ``ndim`` with ``uint32`` dims.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MODEL_FILE = "model_algo-1"  # the artifact name of the built-in algorithms that use this format
LIST_MAGIC = 0x112
ARRAY_MAGIC_V1 = 0xF993FAC8
ARRAY_MAGIC_V2 = 0xF993FAC9
ARRAY_MAGIC_V3 = 0xF993FACA
DENSE = 0
CPU = 1
_TYPE_FLAGS: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("<f8"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
    5: np.dtype("i1"),
    6: np.dtype("<i8"),
    7: np.dtype("?"),
    8: np.dtype("<i2"),
    9: np.dtype("<u2"),
    10: np.dtype("<u4"),
    11: np.dtype("<u8"),
}
_FLAG_OF = {dtype: flag for flag, dtype in _TYPE_FLAGS.items()}


class NDArrayFileError(ValueError):
    """The bytes are not an MXNet NDArray-list file this reader understands."""


def _encode_array(array: np.ndarray) -> bytes:
    data = np.ascontiguousarray(array)  # a 0-d array becomes shape (1,): MXNet reads ndim 0 as an empty array
    dtype = data.dtype.newbyteorder("<") if data.dtype.byteorder == ">" else data.dtype
    flag = _FLAG_OF.get(np.dtype(dtype))
    if flag is None:
        raise NDArrayFileError(f"dtype {array.dtype} has no MXNet type flag")
    head = struct.pack("<Ii", ARRAY_MAGIC_V2, DENSE)
    shape = struct.pack("<i", data.ndim) + struct.pack(f"<{data.ndim}q", *data.shape)
    tail = struct.pack("<iii", CPU, 0, flag)
    return head + shape + tail + data.astype(_TYPE_FLAGS[flag], copy=False).tobytes()


def dumps(arrays: Sequence[np.ndarray], names: Sequence[str] = ()) -> bytes:
    """Serialise ``arrays`` (and optional parallel ``names``) to the NDArray-list layout."""
    if names and len(names) != len(arrays):
        raise NDArrayFileError(f"{len(names)} names for {len(arrays)} arrays")
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    parts.extend(_encode_array(array) for array in arrays)
    parts.append(struct.pack("<Q", len(names)))
    for name in names:
        raw = name.encode("utf-8")
        parts.append(struct.pack("<Q", len(raw)) + raw)
    return b"".join(parts)


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise NDArrayFileError(f"file ends at byte {len(self.buf)}, expected {size} more bytes at {self.pos}")
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return values

    def raw(self, size: int) -> bytes:
        if self.pos + size > len(self.buf):
            raise NDArrayFileError(f"file ends at byte {len(self.buf)}, expected {size} data bytes at {self.pos}")
        out = self.buf[self.pos : self.pos + size]
        self.pos += size
        return out


def _decode_array(reader: _Reader) -> np.ndarray:
    (magic,) = reader.take("<I")
    if magic in (ARRAY_MAGIC_V2, ARRAY_MAGIC_V3):
        (stype,) = reader.take("<i")
        if stype != DENSE:
            raise NDArrayFileError(f"sparse NDArray storage type {stype} is not supported")
        (ndim,) = reader.take("<i")
        shape = reader.take(f"<{max(ndim, 0)}q")
    elif magic == ARRAY_MAGIC_V1:
        (ndim,) = reader.take("<i")
        shape = reader.take(f"<{max(ndim, 0)}q")
    else:  # the legacy layout: the first word is ndim, the dims are uint32
        ndim = magic
        if ndim > 32:
            raise NDArrayFileError(f"unsupported NDArray magic 0x{magic:08x}")
        shape = reader.take(f"<{ndim}I")
    if ndim < 0 or (ndim == 0 and magic != ARRAY_MAGIC_V3):
        return np.empty(0, dtype=np.float32)  # MXNet's "none" array (unknown shape): nothing follows the shape
    _dev_type, _dev_id, flag = reader.take("<iii")
    dtype = _TYPE_FLAGS.get(flag)
    if dtype is None:
        raise NDArrayFileError(f"unknown MXNet type flag {flag}")
    count = int(np.prod(shape, dtype=np.int64)) if ndim else 1
    data = reader.raw(count * dtype.itemsize)
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def loads(buf: bytes) -> tuple[list[np.ndarray], list[str]]:
    """Parse an NDArray-list file; returns the arrays and the names (empty when the file has none)."""
    reader = _Reader(buf)
    magic, _reserved, count = reader.take("<QQQ")
    if magic != LIST_MAGIC:
        raise NDArrayFileError(f"not an MXNet NDArray file (magic 0x{magic:x}, expected 0x{LIST_MAGIC:x})")
    arrays = [_decode_array(reader) for _ in range(count)]
    (n_names,) = reader.take("<Q")
    names = []
    for _ in range(n_names):
        (length,) = reader.take("<Q")
        names.append(reader.raw(length).decode("utf-8"))
    if names and len(names) != len(arrays):
        raise NDArrayFileError(f"{len(names)} names for {len(arrays)} arrays")
    return arrays, names


def save(path: Path, arrays: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> None:
    """Write a list (no names) or a name -> array mapping, like ``mx.nd.save``."""
    if isinstance(arrays, Mapping):
        path.write_bytes(dumps(list(arrays.values()), list(arrays.keys())))
    else:
        path.write_bytes(dumps(list(arrays)))


def load(path: Path) -> list[np.ndarray] | dict[str, np.ndarray]:
    """Read a file written by :func:`save` or by MXNet: a list when unnamed, else a dict, like ``mx.nd.load``."""
    arrays, names = loads(path.read_bytes())
    if names:
        return dict(zip(names, arrays, strict=True))
    return arrays
