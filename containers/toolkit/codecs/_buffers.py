"""Reading a stream in large chunks straight into new buffers, for the chunked readers (recordIO, CSV)."""

from __future__ import annotations

import logging
from typing import BinaryIO

import numpy as np

logger = logging.getLogger(__name__)


def read_block_after(stream: BinaryIO, pending: bytes | bytearray | memoryview, size: int) -> memoryview:
    """``pending`` followed by up to ``size`` bytes of ``stream``, read straight into one new block.

    ``readinto`` spares the copy that ``pending + stream.read(size)`` makes of every chunk, and the block is
    uninitialised memory (numpy's ``empty``): a ``bytearray`` would first zero-fill what the read overwrites at
    once. The block is new each time, so nothing decoded from (or viewed in) an earlier one can change. Fewer than
    ``size`` new bytes means the stream ended (regular files and ``BytesIO`` fill the request until their end).
    """
    kept = len(pending)
    block = np.empty(kept + size, dtype=np.uint8).data
    block[:kept] = pending
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        data = stream.read(size)
        block[kept : kept + len(data)] = data
        got = len(data)
    else:
        got = readinto(block[kept:]) or 0
    return block[: kept + got] if got < size else block
