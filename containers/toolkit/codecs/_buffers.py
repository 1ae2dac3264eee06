"""Reading a file's bytes for the chunked readers (recordIO, CSV): straight into new blocks, or mapped."""

from __future__ import annotations

import logging
import mmap
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from containers.toolkit.errors import UserError

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


class MappedFile:
    """A training file's bytes mapped read-only (docs/algorithms/pca.md#algorithm): no copy into new chunks, no
    zero-filled pages; the kernel maps its page cache.

    The mapping lives as long as anything viewing it (arrays decoded in place keep it alive) and is unmapped then.
    A mapped file must not shrink while it is read (touching a page past its new end kills the process with
    SIGBUS): the job's input files are written before the job starts and nothing writes them during it
    (docs/decisions.md#pca-reads-recordio-through-mmap-deals-batches-to-the-free-worker-issue-24-fourth-round).
    :meth:`window` checks the file's size before handing out each range, so a file cut while it is read fails the
    job with a message instead, except in the short time between that check and the bytes' use.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as handle:
            self.size = os.fstat(handle.fileno()).st_size
            # the mapping keeps its own descriptor; an empty file cannot be mapped and has no bytes to read
            self._mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        self._view = memoryview(self._mapping) if self._mapping is not None else memoryview(b"")

    def window(self, start: int, stop: int) -> memoryview:
        """Bytes ``[start, stop)`` (``stop`` at most :attr:`size`), after checking the file still holds them."""
        if self._mapping is not None and self._mapping.size() < stop:
            raise UserError(f"{self.path} shrank while it was being read: input files must not change during a job.")
        return self._view[start:stop]
