"""regular mode on several cores (docs/algorithms/pca.md#algorithm): the batches go round-robin to one worker thread
per core, each with its own :class:`ScatterAccumulator` and a single-threaded BLAS, and the workers' states merge
with Chan's formula in worker order (the same merge as across hosts).

A two-thread ``dsyrk`` leaves one core idle while the next batch is read, decoded, converted and shifted, and its
threads wait for each other inside every call (on a busy machine a descheduled BLAS thread stalls the other). Here
the main thread only reads and decodes, and each worker converts, shifts and multiplies its own batches: the cores
stay busy and no BLAS call waits for another thread. The result does not depend on the timing: which worker gets a
batch and the order of the merge are fixed.

OpenBLAS's thread count is set to 1 for the duration through its C API, found in the loaded library; when the BLAS
is not an OpenBLAS whose count can be set, the batches are accumulated in the calling thread as before.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

from containers.pca.algorithm import ScatterAccumulator, merge_states

logger = logging.getLogger(__name__)

PROC_MAPS = Path("/proc/self/maps")
SET_THREADS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")
GET_THREADS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads")
Piece = tuple[Path, int, np.ndarray]  # file, first row in it, rows
_DONE = None


@cache
def _openblas_thread_controls() -> tuple[Callable[[int], None], Callable[[], int]] | None:
    """OpenBLAS's ``set_num_threads`` and ``get_num_threads`` from the loaded library (numpy's), or None (looked up
    once: the accumulation and the solve both use them)."""
    try:
        maps = PROC_MAPS.read_text()
    except OSError:
        return None
    paths = {line.split()[-1] for line in maps.splitlines() if "openblas" in line.rsplit("/", 1)[-1].lower()}
    for path in sorted(paths, key=lambda path: ("/numpy" not in path, path)):  # numpy's own first (scipy has one)
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(library, name) for name in SET_THREADS if hasattr(library, name)), None)
        getter = next((getattr(library, name) for name in GET_THREADS if hasattr(library, name)), None)
        if setter is not None and getter is not None:
            setter.argtypes, setter.restype = [ctypes.c_int], None
            getter.argtypes, getter.restype = [], ctypes.c_int
            return setter, getter
    return None


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


class _Worker:
    """One thread's accumulator, fed through a one-slot queue; it remembers its first non-finite batch."""

    def __init__(self, d: int) -> None:
        self.accumulator = ScatterAccumulator(d)
        self.inbox: queue.Queue[tuple[int, Piece] | None] = queue.Queue(maxsize=1)
        self.failed: tuple[int, Piece] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="pca-accumulate", daemon=True)

    def _run(self) -> None:
        while (item := self.inbox.get()) is not _DONE:
            if self.failed is not None or self.error is not None:
                continue  # keep draining, so that the feeder never blocks
            rows = item[1][2]
            try:
                if not self.accumulator.add(rows):
                    self.failed = item
            except BaseException as exc:  # handed to the feeding thread, raised there
                self.error = exc


def accumulate_in_workers(pieces: Iterator[Piece], d: int, workers: int) -> tuple[ScatterAccumulator, Piece | None]:
    """The pieces accumulated by ``workers`` threads and merged; with the first piece (in order) holding a NaN or an
    infinite value, if any (then the accumulator is incomplete). Call inside :func:`single_threaded_blas`."""
    crew = [_Worker(d) for _ in range(workers)]
    for worker in crew:
        worker.thread.start()
    try:
        for number, piece in enumerate(pieces):
            if any(worker.failed is not None or worker.error is not None for worker in crew):
                break
            crew[number % workers].inbox.put((number, piece))
    finally:
        for worker in crew:
            worker.inbox.put(_DONE)
        for worker in crew:
            worker.thread.join()
    for worker in crew:
        if worker.error is not None:
            raise worker.error
    failures = [worker.failed for worker in crew if worker.failed is not None]
    if failures:
        return crew[0].accumulator, min(failures, key=lambda failure: failure[0])[1]
    merged = ScatterAccumulator(d)
    merged.load(merge_states([worker.accumulator.state() for worker in crew], "m2"))
    return merged, None
