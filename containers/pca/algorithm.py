"""Streaming PCA (docs/algorithms/pca.md#algorithm): exact scatter-matrix accumulation, or a one-pass randomized sketch
for wide data.

Both modes keep *centered* statistics (regular mode: shifted by a reference close to the mean, then centered) and
merge them with Chan's pairwise formula, so a large mean never cancels digits away and the result does not depend
on how the rows were cut into batches (up to rounding).

* regular: ``M2 = sum (x - mean)^T (x - mean)`` (d x d, float64), accumulated block by block: each block is
  shifted by the mean of its first rows, one BLAS ``syrk`` (``c.T @ c``, half the work of ``gemm``) gives its
  sums, which merge with Chan's formula; then an exact symmetric eigendecomposition of the top ``num_components``.
* randomized: only ``Y = M2 @ Omega`` (d x l) is kept, for a fixed orthonormal Gaussian ``Omega`` (d x l); the
  top eigenpairs come from the single-pass Nystrom approximation ``M2 ~ Y (Omega^T Y)^+ Y^T``. Memory is O(d*l),
  cost O(b*d*l) per batch.

``subtract_mean=false`` uses ``sum x^T x = M2 + n mean mean^T`` instead. Singular values are ``sqrt`` of the
eigenvalues (the singular values of the centered data matrix, like scikit-learn's ``singular_values_``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

SUBSET_EIGH_MIN_DIM = 1024  # from this d on, only the top eigenpairs are computed (scipy, imported then)
BLOCK_VALUES = 1 << 21  # regular mode shifts and multiplies up to 2^21 values at a time (10485 rows at d=200)
SHIFT_ROWS = 1024  # regular mode shifts each block by the mean of its first rows
CACHE_VALUES = 1 << 17  # rows are converted, shifted and summed 1 MB of float64 at a time


@dataclass
class Components:
    """``mean`` (d,), ``v`` (d, k) and ``s`` (k,), both in ascending order of ``s`` (the AWS artifact's order)."""

    mean: np.ndarray
    v: np.ndarray
    s: np.ndarray
    n: int
    total_variance: float

    @property
    def explained_variance(self) -> np.ndarray:
        return self.s**2 / max(self.n - 1, 1)


def flip_signs(v: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude entry of each column positive (scikit-learn's convention for components)."""
    rows = np.argmax(np.abs(v), axis=0)
    signs = np.sign(v[rows, np.arange(v.shape[1])])
    signs[signs == 0] = 1.0
    return v * signs


class _Moments:
    """Row count and running mean, merged batch by batch."""

    def __init__(self, d: int) -> None:
        self.n = 0
        self.mean = np.zeros(d, dtype=np.float64)

    def merge(self, batch_n: int, batch_mean: np.ndarray) -> tuple[np.ndarray, float]:
        """Update; returns (delta = batch_mean - old_mean, n_a * n_b / n) for the cross term."""
        total = self.n + batch_n
        delta = batch_mean - self.mean
        weight = self.n * batch_n / total
        self.mean += delta * (batch_n / total)
        self.n = total
        return delta, weight


def merge_states(
    states: list[dict[str, np.ndarray]], matrix: str, project: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Merge the hosts' states (``n``, ``mean``, the ``matrix`` of centered statistics, ``trace``) with Chan's
    pairwise formula, in host order (docs/algorithms/pca.md#distributed-training). ``project`` is the sketch's
    ``Omega``: the cross term is then ``outer(delta * w, delta @ Omega)`` instead of ``outer(delta, delta * w)``."""
    merged = {name: np.array(value, dtype=np.float64) for name, value in states[0].items()}
    for state in states[1:]:
        n_a, n_b = float(merged["n"][0]), float(state["n"][0])
        if n_b == 0:
            continue
        total = n_a + n_b
        delta = state["mean"] - merged["mean"]
        weight = n_a * n_b / total
        merged[matrix] += state[matrix]
        right = delta if project is None else delta @ project
        merged[matrix] += np.outer(delta * weight, right)
        merged["trace"] += state["trace"] + weight * float(delta @ delta)
        merged["mean"] += delta * (n_b / total)
        merged["n"] = np.asarray([total])
    return merged


class BlockSums(NamedTuple):
    """One block's sums: ``gram = sum c^T c`` and ``total = sum c`` of its ``rows`` rows ``c = x - shift``."""

    gram: np.ndarray
    total: np.ndarray
    shift: np.ndarray
    rows: int


class BlockBuffer:
    """The reused float64 block that a thread shifts rows into, up to ``rows`` rows at a time."""

    def __init__(self, d: int) -> None:
        self.rows = max(256, BLOCK_VALUES // max(d, 1))
        self.d = d
        self._block: np.ndarray | None = None  # allocated on first use

    def sums(self, batch: np.ndarray) -> list[BlockSums] | None:
        """The sums of each block of ``batch``, in order; None when it holds a NaN or an infinite value (the caller
        names it) or when their squares overflow."""
        found = []
        for start in range(0, batch.shape[0], self.rows):
            rows = batch[start : start + self.rows]
            with np.errstate(over="ignore", invalid="ignore"):  # reported by the return value
                block, shift, total = self._shifted(rows)
                gram = block.T @ block  # the same buffer on both sides: numpy calls BLAS syrk
            if not np.isfinite(np.diagonal(gram)).all():
                return None
            found.append(BlockSums(gram, total, shift, rows.shape[0]))
        return found

    def _shifted(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``rows - shift`` in the reused float64 buffer (converted by the copy, shifted in place), the shift and
        the column sums of the shifted rows. The shift is the mean of the first ``SHIFT_ROWS`` rows of the float64
        copy (contiguous: 3x faster than from float32 rows spread through a recordIO chunk). Rows are copied,
        shifted and summed ``CACHE_VALUES`` at a time, while they are in the core's cache: with both cores busy
        this saves ~3 % of the CPU of three passes over the whole block (memory bandwidth is shared)."""
        if self._block is None:
            self._block = np.empty((self.rows, self.d), dtype=np.float64)
        count = rows.shape[0]
        block = self._block[:count]
        head = min(count, SHIFT_ROWS)
        np.copyto(block[:head], rows[:head])
        shift = block[:head].mean(axis=0)
        total = np.zeros(self.d)
        step = max(1, CACHE_VALUES // max(self.d, 1))
        for start in range(0, count, step):
            stop = min(start + step, count)
            if stop > head:
                np.copyto(block[max(start, head) : stop], rows[max(start, head) : stop])
            part = block[start:stop]
            part -= shift
            total += part.sum(axis=0)
        return block, shift, total


class ScatterAccumulator:
    """regular mode: the exact d x d scatter matrix ``M2``, accumulated block by block (row-major, symmetric).

    Each block of rows is shifted by the mean of its first rows (``SHIFT_ROWS``) into a reused float64 buffer
    (float32 rows are converted by the copy); one BLAS ``syrk`` of it gives the block's ``G = sum c^T c`` and a
    column sum its ``t`` (docs/algorithms/pca.md#algorithm). The block's centered scatter ``G - t t^T / n_b`` and
    mean ``shift + t / n_b`` merge into ``M2`` with Chan's formula: the rows are nearly centered before they are
    multiplied, so no digits cancel, however the mean drifts through the data. A NaN or infinite value shows as a
    non-finite diagonal of ``G``: :meth:`add` then returns False (no separate pass over the rows looks for them).
    The sums of a block (:class:`BlockBuffer`) and their merge (:meth:`merge`) are separate steps, so that several
    threads can compute blocks and merge them in order.
    """

    def __init__(self, d: int) -> None:
        self.moments = _Moments(d)
        self.m2 = np.zeros((d, d), dtype=np.float64)
        self._buffer = BlockBuffer(d)

    @property
    def rows(self) -> int:
        return self.moments.n

    def add(self, batch: np.ndarray) -> bool:
        """Add the rows of ``batch``; False when it holds a NaN or an infinite value (the caller names it) or when
        their squares overflow."""
        found = self._buffer.sums(batch)
        return found is not None and all(self.merge(sums) for sums in found)

    def merge(self, sums: BlockSums) -> bool:
        """Chan's formula: a block's centered scatter and mean into ``m2`` and ``moments``; False when ``m2``
        overflows (blocks far apart: the squares of their means' difference)."""
        gram, total, shift, count = sums
        with np.errstate(over="ignore", invalid="ignore"):  # reported by the return value
            self.m2 += gram - np.outer(total, total / count)
            delta, weight = self.moments.merge(count, shift + total / count)
            if weight:
                self.m2 += np.outer(delta, delta * weight)
        return bool(np.isfinite(np.diagonal(self.m2)).all())

    def state(self) -> dict[str, np.ndarray]:
        """What a host sends the leader: row count, mean and the centered scatter matrix."""
        return {
            "n": np.asarray([float(self.moments.n)]),
            "mean": self.moments.mean,
            "m2": self.m2,
            "trace": np.asarray([0.0]),
        }

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.moments.n = int(state["n"][0])
        self.moments.mean = np.asarray(state["mean"], dtype=np.float64)
        self.m2 = np.asarray(state["m2"], dtype=np.float64)

    def scatter(self, subtract_mean: bool) -> np.ndarray:
        full = (self.m2 + self.m2.T) / 2  # symmetric up to rounding already; make it exactly so
        if not subtract_mean:
            full += self.moments.n * np.outer(self.moments.mean, self.moments.mean)
        return full

    def solve(self, k: int, subtract_mean: bool) -> Components:
        matrix = self.scatter(subtract_mean)
        values, vectors = top_eigenpairs(matrix, k)
        return _components(self.moments, values, vectors, float(np.trace(matrix)), subtract_mean)


def top_eigenpairs(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenpairs of a symmetric matrix, in ascending order."""
    d = matrix.shape[0]
    if d < SUBSET_EIGH_MIN_DIM:  # a full LAPACK syevd is fast here, and numpy is already loaded
        values, vectors = np.linalg.eigh(matrix)
        return values[d - k :], vectors[:, d - k :]
    from scipy.linalg import eigh

    values, vectors = eigh(matrix, subset_by_index=[d - k, d - 1])
    return values, vectors


class SketchAccumulator:
    """randomized mode: ``Y = M2 @ Omega`` for a fixed random orthonormal ``Omega`` (d x l)."""

    def __init__(self, d: int, sketch: int, rng: np.random.Generator) -> None:
        self.moments = _Moments(d)
        self.omega, _ = np.linalg.qr(rng.standard_normal((d, sketch)))
        self.y = np.zeros((d, sketch), dtype=np.float64)
        self.trace = 0.0

    @property
    def rows(self) -> int:
        return self.moments.n

    def add(self, batch: np.ndarray) -> bool:
        """Add the rows of ``batch``; False when it holds a NaN or an infinite value (the caller names it)."""
        if batch.shape[0] == 0:
            return True
        with np.errstate(over="ignore", invalid="ignore"):  # reported by the return value
            batch_mean = batch.mean(axis=0, dtype=np.float64)
            centered = np.subtract(batch, batch_mean, dtype=np.float64)
            self.y += centered.T @ (centered @ self.omega)
            self.trace += float(np.einsum("ij,ij->", centered, centered))
        delta, weight = self.moments.merge(batch.shape[0], batch_mean)
        if weight:
            self.y += np.outer(delta * weight, delta @ self.omega)
            self.trace += weight * float(delta @ delta)
        return math.isfinite(self.trace)

    def state(self) -> dict[str, np.ndarray]:
        """What a host sends the leader: row count, mean, ``Y`` and the trace (every host draws the same Omega)."""
        return {
            "n": np.asarray([float(self.moments.n)]),
            "mean": self.moments.mean,
            "y": self.y,
            "trace": np.asarray([self.trace]),
        }

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.moments.n = int(state["n"][0])
        self.moments.mean = np.asarray(state["mean"], dtype=np.float64)
        self.y = np.asarray(state["y"], dtype=np.float64)
        self.trace = float(state["trace"][0])

    def solve(self, k: int, subtract_mean: bool) -> Components:
        y = self.y
        trace = self.trace
        if not subtract_mean:
            mean, n = self.moments.mean, self.moments.n
            y = y + n * np.outer(mean, mean @ self.omega)
            trace += n * float(mean @ mean)
        values, vectors = nystrom_eigenpairs(y, self.omega)
        return _components(self.moments, values[-k:], vectors[:, -k:], trace, subtract_mean)


def nystrom_eigenpairs(y: np.ndarray, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs (ascending) of the PSD matrix ``A`` known only through ``y = A @ omega`` (stable Nystrom)."""
    shift = np.finfo(np.float64).eps * np.sqrt(y.shape[0]) * max(np.linalg.norm(y, 2), 1e-300)
    y_shift = y + shift * omega
    core = omega.T @ y_shift
    core = (core + core.T) / 2
    weights, basis = np.linalg.eigh(core)
    keep = weights > weights.max() * 1e-12
    factor = y_shift @ (basis[:, keep] / np.sqrt(weights[keep]))
    left, sigma, _ = np.linalg.svd(factor, full_matrices=False)
    values = np.maximum(sigma**2 - shift, 0.0)
    return values[::-1], left[:, ::-1]


def _components(
    moments: _Moments, values: np.ndarray, vectors: np.ndarray, trace: float, subtract_mean: bool
) -> Components:
    values = np.maximum(values, 0.0)
    mean = moments.mean.copy() if subtract_mean else np.zeros_like(moments.mean)
    return Components(mean, flip_signs(vectors), np.sqrt(values), moments.n, trace)
