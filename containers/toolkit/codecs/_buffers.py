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


class NotMappableError(Exception):
    """The file system cannot map this file (``mmap`` refused it): read it instead."""


class MappedFile:
    """A training file read through read-only mappings of its windows (docs/algorithms/pca.md#algorithm): no copy
    into new chunks, no zero-filled pages; the kernel maps its page cache.

    Each window is a mapping of its own that lives as long as anything viewing it (arrays decoded in place keep it
    alive) and is unmapped then, so the file's mapped pages stay bounded by the windows in use. A mapped file must
    not shrink while it is read (touching a page past its new end kills the process with SIGBUS): the job's input
    files are written before the job starts and nothing writes them during it
    (docs/decisions.md#pca-reads-recordio-through-mmap-deals-batches-to-the-free-worker-issue-24-fourth-round).
    :meth:`window` checks the file's size before mapping each window, so a file cut while it is read fails the job
    with a message instead, except in the short time between that check and the bytes' use. Opening raises
    :class:`NotMappableError` where the file cannot be mapped (the caller then reads it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("rb")
        try:
            self.size = os.fstat(self._handle.fileno()).st_size
            if self.size:  # an empty file cannot be mapped, and has nothing to read
                self._map(0, min(self.size, mmap.ALLOCATIONGRANULARITY)).close()
        except OSError as exc:
            self._handle.close()
            raise NotMappableError(exc.strerror or str(exc)) from exc
        except BaseException:
            self._handle.close()
            raise

    def __enter__(self) -> MappedFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._handle.close()  # the windows keep their own descriptors

    def window(self, start: int, stop: int) -> memoryview:
        """Bytes ``[start, stop)`` (``start < stop <= size``), after checking the file still holds them."""
        if os.fstat(self._handle.fileno()).st_size < stop:
            raise UserError(f"{self.path} shrank while it was being read: input files must not change during a job.")
        base = start - start % mmap.ALLOCATIONGRANULARITY  # a mapping starts on a page boundary
        return memoryview(self._map(base, stop - base))[start - base :]

    def _map(self, offset: int, length: int) -> mmap.mmap:
        return mmap.mmap(self._handle.fileno(), length, offset=offset, access=mmap.ACCESS_READ)
