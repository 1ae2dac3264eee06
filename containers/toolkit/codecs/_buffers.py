"""Reading a stream in large chunks straight into new buffers, for the chunked readers (recordIO, CSV)."""

from __future__ import annotations

import logging
from typing import BinaryIO

import numpy as np

logger = logging.getLogger(__name__)


def read_after(stream: BinaryIO, pending: bytes | bytearray, size: int) -> bytearray:
    """``pending`` followed by up to ``size`` bytes of ``stream``, read straight into one new buffer.

    ``readinto`` spares the copy that ``pending + stream.read(size)`` makes of every chunk. The buffer is new each
    time, so nothing decoded from an earlier one can change. Fewer than ``size`` new bytes means the stream ended
    (regular files and ``BytesIO`` fill the request until their end).
    """
    kept = len(pending)
    buf = bytearray(kept + size)
    buf[:kept] = pending
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        data = stream.read(size)
        buf[kept : kept + len(data)] = data
        got = len(data)
    else:
        got = readinto(memoryview(buf)[kept:]) or 0
    if got < size:
        del buf[kept + got :]
    return buf


def read_block_after(stream: BinaryIO, pending: bytes | bytearray | memoryview, size: int) -> memoryview:
    """As :func:`read_after`, into an uninitialised block: no zero-filling of memory that the read overwrites at
    once (for readers that only index, slice and view the bytes, as the recordIO decoder does)."""
    kept = len(pending)
    block = memoryview(np.empty(kept + size, dtype=np.uint8))
    block[:kept] = pending
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        data = stream.read(size)
        block[kept : kept + len(data)] = data
        got = len(data)
    else:
        got = readinto(block[kept:]) or 0
    return block[: kept + got] if got < size else block
