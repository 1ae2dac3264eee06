from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from containers.pca import parallel
from containers.pca.algorithm import SUBSET_EIGH_MIN_DIM, BlockBuffer, ScatterAccumulator
from containers.pca.parallel import accumulate_in_workers, single_threaded_blas
from containers.pca.train import solving_threads

SOURCE = Path("train.pbr")


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(2)
    return (rng.normal(size=(5000, 16)) * np.geomspace(5, 0.1, 16) + np.linspace(0, 3, 5000)[:, None] + 50).astype(
        np.float32
    )


def _pieces(rows: np.ndarray, size: int):
    return ((SOURCE, start, rows[start : start + size]) for start in range(0, len(rows), size))


@pytest.mark.parametrize("workers", [2, 3, 7])
def test_workers_give_the_scatter_of_one_accumulator(rows, workers):
    alone = ScatterAccumulator(16)
    for _, _, piece in _pieces(rows, 700):
        assert alone.add(piece)
    merged, failed = accumulate_in_workers(_pieces(rows, 700), 16, workers)
    assert failed is None and merged.rows == len(rows)
    np.testing.assert_allclose(merged.moments.mean, alone.moments.mean, rtol=1e-13)
    np.testing.assert_allclose(merged.m2, alone.m2, rtol=1e-11, atol=1e-11 * np.abs(alone.m2).max())
    again, _ = accumulate_in_workers(_pieces(rows, 700), 16, workers)
    assert np.array_equal(again.m2, merged.m2)  # the same batches go to the same workers, merged in one order


def test_the_result_does_not_depend_on_which_worker_is_slow(rows, monkeypatch):
    """Pieces go to whichever worker is free, but their sums merge in the pieces' order: the same bits as one
    accumulator fed the same pieces (the first cut in one part per worker)."""
    alone = ScatterAccumulator(16)
    cuts = [350, *range(700, 5000, 700), 5000]  # 2 workers: the first piece halved
    for start, stop in zip([0, *cuts[:-1]], cuts, strict=True):
        assert alone.add(rows[start:stop])
    quick, _ = accumulate_in_workers(_pieces(rows, 700), 16, 2)
    assert np.array_equal(quick.m2, alone.m2) and np.array_equal(quick.moments.mean, alone.moments.mean)
    sums = BlockBuffer.sums
    first_thread: list[int] = []

    def first_thread_is_slow(self, batch):
        if not first_thread:
            first_thread.append(threading.get_ident())
        if threading.get_ident() == first_thread[0]:
            time.sleep(0.05)  # this worker falls behind: the other one takes the next pieces
        return sums(self, batch)

    monkeypatch.setattr(BlockBuffer, "sums", first_thread_is_slow)
    slow, _ = accumulate_in_workers(_pieces(rows, 700), 16, 2)
    assert np.array_equal(slow.m2, alone.m2) and np.array_equal(slow.moments.mean, alone.moments.mean)


def test_the_first_non_finite_piece_in_order_is_reported(rows):
    bad = rows.copy()
    bad[1500, 3] = np.inf  # piece 2 (rows 1400-2099), worker 0 of 2
    bad[800, 5] = np.nan  # piece 1, worker 1
    _, failed = accumulate_in_workers(_pieces(bad, 700), 16, 2)
    assert failed is not None and failed[1] == 700


def test_a_worker_error_is_raised_in_the_caller(rows):
    wrong_width = [(SOURCE, 0, rows[:10]), (SOURCE, 10, rows[10:20, :8]), (SOURCE, 20, rows[20:30])]
    with pytest.raises(ValueError):
        accumulate_in_workers(iter(wrong_width), 16, 2)


def test_a_decoding_error_stops_the_workers(rows):
    def failing():
        yield SOURCE, 0, rows[:100]
        raise RuntimeError("truncated")

    with pytest.raises(RuntimeError, match="truncated"):
        accumulate_in_workers(failing(), 16, 2)


def test_single_threaded_blas_sets_and_restores_openblas_threads():
    controls = parallel._openblas_thread_controls()
    if controls is None:  # not an OpenBLAS whose count can be set: nothing may change
        with single_threaded_blas() as single:
            assert single is False
        return
    _, getter = controls
    before = getter()
    with single_threaded_blas() as single:
        assert single is True and getter() == 1
    assert getter() == before


def test_a_small_eigendecomposition_runs_on_one_blas_thread():
    controls = parallel._openblas_thread_controls()
    before = None if controls is None else controls[1]()
    with solving_threads(200) as single:  # d = 200: ~3 ms on one thread; a second one only waits
        assert single is (controls is not None)
        assert controls is None or controls[1]() == 1
    with solving_threads(SUBSET_EIGH_MIN_DIM) as single:  # large: LAPACK's threads are worth it
        assert single is False
        assert controls is None or controls[1]() == before
    assert controls is None or controls[1]() == before
