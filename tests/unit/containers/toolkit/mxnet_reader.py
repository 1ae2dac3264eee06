"""An MXNet NDArray-list reader written from MXNet's sources (``NDArray::Save``/``NDArray::Load`` in
src/ndarray/ndarray.cc, ``Tuple::Save`` in include/mxnet/tuple.h, ``Context::Save`` in include/mxnet/base.h, dmlc-core's
vector and string serializers), independent of ``containers.toolkit.ndarray_file``, to check what that module writes.

File: ``uint64 0x112``, ``uint64 0``, then the arrays as a dmlc vector (``uint64`` count, each ``NDArray::Save``),
then the names as a dmlc vector of strings (``uint64`` count, each ``uint64`` length + bytes). One dense array (V2):
``uint32 0xF993FAC9``, ``int32`` storage type (0 dense), the shape (``int32`` ndim, ``int64`` per dim; ndim 0 = none,
nothing follows), the context (``int32`` dev_type, ``int32`` dev_id), ``int32`` type flag, the data.
"""

from __future__ import annotations

import io
import struct

import numpy as np

MSHADOW_TYPES = {0: "<f4", 1: "<f8", 2: "<f2", 3: "|u1", 4: "<i4", 5: "|i1", 6: "<i8"}


class _Stream:
    def __init__(self, raw: bytes) -> None:
        self.io = io.BytesIO(raw)

    def read(self, fmt: str):
        size = struct.calcsize(fmt)
        chunk = self.io.read(size)
        if len(chunk) != size:
            raise ValueError("Invalid NDArray file format")  # MXNet's CHECK message
        return struct.unpack(fmt, chunk)

    def at_end(self) -> bool:
        return self.io.read(1) == b""


def read_ndarray_list(raw: bytes) -> tuple[list[np.ndarray | None], list[str], list[dict]]:
    """(arrays, names, per-array headers) as ``mx.nd.load`` would see them; a none array is ``None``."""
    stream = _Stream(raw)
    header, reserved = stream.read("<QQ")
    if header != 0x112 or reserved != 0:
        raise ValueError("Invalid NDArray file format")
    (count,) = stream.read("<Q")
    arrays, headers = [], []
    for _ in range(count):
        (magic,) = stream.read("<I")
        (stype,) = stream.read("<i")
        if magic != 0xF993FAC9 or stype != 0:
            raise ValueError(f"not a dense V2 array: magic {magic:#x}, stype {stype}")
        (ndim,) = stream.read("<i")
        shape = stream.read(f"<{ndim}q")
        if ndim == 0:
            arrays.append(None)
            headers.append({"ndim": 0})
            continue
        dev_type, dev_id, type_flag = stream.read("<iii")
        dtype = np.dtype(MSHADOW_TYPES[type_flag])
        size = int(np.prod(shape)) * dtype.itemsize
        data = stream.io.read(size)
        if len(data) != size:
            raise ValueError("Invalid NDArray file format")
        arrays.append(np.frombuffer(data, dtype=dtype).reshape(shape))
        headers.append({"ndim": ndim, "dev_type": dev_type, "dev_id": dev_id, "type_flag": type_flag})
    (n_names,) = stream.read("<Q")
    names = []
    for _ in range(n_names):
        (length,) = stream.read("<Q")
        names.append(stream.io.read(length).decode("utf-8"))
    if n_names not in (0, count) or not stream.at_end():
        raise ValueError("Invalid NDArray file format")
    return arrays, names, headers


def mx_nd_load(raw: bytes) -> list[np.ndarray | None] | dict[str, np.ndarray | None]:
    """What ``mxnet.ndarray.load`` returns: a list without names, a dict with them."""
    arrays, names, _ = read_ndarray_list(raw)
    return dict(zip(names, arrays, strict=True)) if names else arrays
