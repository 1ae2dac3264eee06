"""Helpers shared by the benchmarks: data generation, timing, the output line."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("SAGESTACK_BENCH_DIR", ROOT / ".bench"))


def work_dir(name: str) -> Path:
    path = WORK / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def emit(name: str, note: str, **figures: float | int | str) -> None:
    """Print the one line every benchmark reports: ``bench <name> k=v ... (note)``."""
    parts = [f"{key}={_fmt(value)}" for key, value in figures.items()]
    print(f"bench {name} {' '.join(parts)} ({note})", flush=True)


def _fmt(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def median_of(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def classification_csv(path: Path, rows: int, features: int, seed: int = 7) -> Path:
    """A seeded binary classification set written as SageMaker CSV: label first, no header."""
    if path.exists():
        return path
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=features, n_informative=min(features, 20), random_state=seed)
    data = np.column_stack([y.astype(np.float32), x.astype(np.float32)])
    tmp = path.with_suffix(".tmp")
    np.savetxt(tmp, data, delimiter=",", fmt="%.6g")
    tmp.rename(path)
    return path


class PeriodicSampler:
    """Calls ``sample()`` every ``interval`` seconds on a daemon thread while its ``with`` block runs."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeriodicSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> None:
        raise NotImplementedError
