"""regular mode on several cores (docs/algorithms/pca.md#algorithm): the main thread reads and decodes the pieces
and deals them to one worker thread per core, each with its own float64 block and a single-threaded BLAS; each
piece goes to whichever worker is free, and the pieces' block sums merge into one accumulator in the pieces' order.

A two-thread ``dsyrk`` leaves one core idle while the next batch is read, decoded, converted and shifted, and its
threads wait for each other inside every call (on a busy machine a descheduled BLAS thread stalls the other). Here
the main thread only reads and decodes, and the workers convert, shift and multiply: the cores stay busy and no
BLAS call waits for another thread. A worker that falls behind (descheduled) does not hold the others up: they
take the next pieces. The first piece is cut into one part per worker, so that every worker starts at once (and
the mapped recordIO reader's small last chunks let them finish together). The result does not depend on the
timing: the merge follows the pieces' order, whichever worker computed them, so it is the one accumulator's
result, bit for bit.

OpenBLAS's thread count is set to 1 for the duration through its C API, found in the loaded library; when the BLAS
is not an OpenBLAS whose count can be set, the batches are accumulated in the calling thread as before.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

from containers.pca.algorithm import BlockBuffer, BlockSums, ScatterAccumulator

logger = logging.getLogger(__name__)

PROC_MAPS = Path("/proc/self/maps")
SET_THREADS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")
GET_THREADS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads")
Piece = tuple[Path, int, np.ndarray]  # file, first row in it, rows
_Outcome = tuple[Piece, list[BlockSums] | BaseException | None]
IN_FLIGHT_PER_WORKER = 2  # pieces dealt and not yet merged, per worker
_DONE = None


@cache
def _openblas_thread_controls() -> tuple[Callable[[int], None], Callable[[], int]] | None:
    """OpenBLAS's ``set_num_threads`` and ``get_num_threads`` from the loaded library (numpy's), or None (looked up
    once: the accumulation and the solve both use them). numpy's wheel keeps its OpenBLAS in ``numpy.libs``: that
    one is tried first, if loaded; else every loaded OpenBLAS in ``/proc/self/maps`` (~0.6 ms to read), numpy's
    first (scipy has its own)."""
    for path in _wheel_openblas():
        found = _controls_in(path, os.RTLD_NOLOAD)  # only if already loaded: never a second copy
        if found is not None:
            return found
    try:
        maps = PROC_MAPS.read_text()
    except OSError:
        return None
    paths = {line.split()[-1] for line in maps.splitlines() if "openblas" in line.rsplit("/", 1)[-1].lower()}
    for path in sorted(paths, key=lambda path: ("/numpy" not in path, path)):
        found = _controls_in(path, ctypes.DEFAULT_MODE)
        if found is not None:
            return found
    return None


def _wheel_openblas() -> list[str]:
    """The OpenBLAS libraries that numpy's wheel ships (none for a numpy built otherwise)."""
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    try:
        return sorted(str(path) for path in libs.iterdir() if "openblas" in path.name.lower())
    except OSError:
        return []


def _controls_in(path: str, mode: int) -> tuple[Callable[[int], None], Callable[[], int]] | None:
    """The thread controls of the library at ``path`` opened with ``mode``, or None."""
    try:
        library = ctypes.CDLL(path, mode=mode)
    except OSError:
        return None
    setter = next((getattr(library, name) for name in SET_THREADS if hasattr(library, name)), None)
    getter = next((getattr(library, name) for name in GET_THREADS if hasattr(library, name)), None)
    if setter is None or getter is None:
        return None
    setter.argtypes, setter.restype = [ctypes.c_int], None
    getter.argtypes, getter.restype = [], ctypes.c_int
    return setter, getter


@contextmanager
def single_threaded_blas() -> Iterator[bool]:
    """OpenBLAS runs each call in the calling thread inside the block (restored after); yields False, changing
    nothing, when its thread count cannot be set."""
    controls = _openblas_thread_controls()
    if controls is None:
        yield False
        return
    setter, getter = controls
    previous = getter()
    setter(1)
    try:
        yield True
    finally:
        setter(previous)


class _InOrder:
    """The pieces' block sums merged into one accumulator in the pieces' order, whichever thread computed them:
    the result is the one :meth:`ScatterAccumulator.add` gives in one thread, whatever the timing. At most
    ``limit`` pieces are dealt and not yet merged (:meth:`deal` waits), so the sums held back stay bounded."""

    def __init__(self, d: int, limit: int) -> None:
        self.accumulator = ScatterAccumulator(d)
        self.failed: Piece | None = None  # the first piece (in order) holding a NaN or an infinite value
        self.error: BaseException | None = None
        self._ready: dict[int, _Outcome] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(limit)

    @property
    def stopped(self) -> bool:
        return self.failed is not None or self.error is not None

    def deal(self) -> None:
        """Wait until one more piece may be dealt."""
        self._slots.acquire()

    def deliver(self, number: int, outcome: _Outcome) -> None:
        """Piece ``number``'s outcome: its block sums, or None (not finite), or the error computing them raised."""
        with self._lock:
            self._ready[number] = outcome
            while self._next in self._ready:
                self._merge(self._ready.pop(self._next))
                self._next += 1
                self._slots.release()

    def _merge(self, outcome: _Outcome) -> None:
        if self.stopped:
            return  # the accumulator is incomplete already: only the first problem counts
        piece, found = outcome
        if isinstance(found, BaseException):
            self.error = found
        elif found is None:
            self.failed = piece
        elif not all(self.accumulator.merge(sums) for sums in found):
            self.failed = piece  # its squares overflow, merged with the earlier pieces


def _work(units: queue.SimpleQueue[tuple[int, Piece] | None], merger: _InOrder, d: int) -> None:
    """One worker: take the next piece, compute its block sums in this thread's buffer, hand them over."""
    buffer = BlockBuffer(d)
    while (item := units.get()) is not _DONE:
        number, piece = item
        if merger.stopped:
            merger.deliver(number, (piece, None))  # keep the order moving; the feeder stops dealing
            continue
        try:
            found: list[BlockSums] | BaseException | None = buffer.sums(piece[2])
        except BaseException as exc:  # handed to the feeding thread, raised there
            found = exc
        merger.deliver(number, (piece, found))


def _dealt(pieces: Iterator[Piece], workers: int) -> Iterator[Piece]:
    """The pieces, the first cut into one part per worker (views), so that every worker starts at once (the
    mapped recordIO reader makes the last pieces of a file small, so that the workers also finish together)."""
    for number, piece in enumerate(pieces):
        if number == 0:
            yield from _parts(piece, workers)
        else:
            yield piece


def _parts(piece: Piece, parts: int) -> Iterator[Piece]:
    path, first_row, rows = piece
    size = -(-rows.shape[0] // parts)
    for start in range(0, rows.shape[0], max(size, 1)):
        yield path, first_row + start, rows[start : start + size]


def accumulate_in_workers(pieces: Iterator[Piece], d: int, workers: int) -> tuple[ScatterAccumulator, Piece | None]:
    """The pieces accumulated by ``workers`` threads and merged; with the first piece (in order) holding a NaN or an
    infinite value, if any (then the accumulator is incomplete). Call inside :func:`single_threaded_blas`."""
    merger = _InOrder(d, IN_FLIGHT_PER_WORKER * workers)
    units: queue.SimpleQueue[tuple[int, Piece] | None] = queue.SimpleQueue()
    crew = [
        threading.Thread(target=_work, args=(units, merger, d), name="pca-accumulate", daemon=True)
        for _ in range(workers)
    ]
    for thread in crew:
        thread.start()
    try:
        for number, piece in enumerate(_dealt(pieces, workers)):
            merger.deal()
            if merger.stopped:
                break
            units.put((number, piece))
    finally:
        for _ in crew:
            units.put(_DONE)
        for thread in crew:
            thread.join()
    if merger.error is not None:
        raise merger.error
    return merger.accumulator, merger.failed
