"""Web-scale mini-batch k-means with extra centers and a weighted local Lloyd reduction
(docs/algorithms/kmeans.md#algorithm).

Stage 1 streams mini-batches through ``K = k * extra_center_factor`` working centers with a per-center learning rate
``p_c = n_c / (N_c + n_c)`` (each center is the running mean of the points it has been given), optionally forgetting
old points with a half-life. Stage 2 shrinks the K centers into k by Lloyd's algorithm on the centers, weighted by
``N_c``, keeping the best of several trials. Everything is vectorised numpy in float64.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

_CHUNK_ENTRIES = 1 << 22  # rows x centers distances computed at once (32 MB of float64)


def _row_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def nearest_labels(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center of every row: :func:`nearest_center` without the distances (no row norms)."""
    labels = np.empty(x.shape[0], dtype=np.int64)
    scaled = np.ascontiguousarray(centers.T, dtype=np.float64) * -2.0  # (d, K)
    center_norms = _row_norms(centers)
    step = max(1, _CHUNK_ENTRIES // max(1, centers.shape[0]))
    for start in range(0, x.shape[0], step):
        scores = x[start : start + step] @ scaled
        scores += center_norms
        np.argmin(scores, axis=1, out=labels[start : start + step])
    return labels


def nearest_center(x: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest center of every row and the squared Euclidean distance to it (chunked, bounded memory).

    ``|x - c|^2 = |x|^2 + (|c|^2 - 2 x.c)``: the bracket alone decides the nearest center, so one GEMM with the
    centers scaled by -2, one in-place add and one argmin per chunk; ``|x|^2`` is added to the winner only.
    """
    n = x.shape[0]
    labels = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=np.float64)
    scaled = np.ascontiguousarray(centers.T, dtype=np.float64) * -2.0  # (d, K)
    center_norms = _row_norms(centers)
    step = max(1, _CHUNK_ENTRIES // max(1, centers.shape[0]))
    for start in range(0, n, step):
        part = x[start : start + step]
        scores = part @ scaled
        scores += center_norms
        idx = np.argmin(scores, axis=1)
        labels[start : start + step] = idx
        nearest = np.take_along_axis(scores, idx[:, None], axis=1)[:, 0]
        nearest += _row_norms(part)
        best[start : start + step] = nearest
    np.maximum(best, 0.0, out=best)
    return labels, best


def kmeans_plusplus(points: np.ndarray, weights: np.ndarray, n_centers: int, rng: np.random.Generator) -> np.ndarray:
    """Weighted greedy k-means++ seeding: indices of ``n_centers`` points, each next one drawn with P ~ w * D^2."""
    n = points.shape[0]
    trials = 2 + int(math.log(max(n_centers, 2)))
    total = weights.sum()
    first = int(rng.choice(n, p=weights / total)) if total > 0 else int(rng.integers(n))
    chosen = [first]
    closest = np.maximum(_row_norms(points - points[first]), 0.0)
    norms = _row_norms(points)
    for _ in range(1, n_centers):
        potential = weights * closest
        mass = potential.sum()
        if mass <= 0:  # every remaining point coincides with a chosen center
            remaining = np.setdiff1d(np.arange(n), chosen)
            pick = int(rng.choice(remaining)) if remaining.size else int(rng.integers(n))
        else:
            candidates = np.searchsorted(np.cumsum(potential), rng.random(trials) * mass)
            candidates = np.minimum(candidates, n - 1)
            d2 = np.maximum(norms[None, :] - 2.0 * points[candidates] @ points.T + norms[candidates][:, None], 0.0)
            options = np.minimum(closest[None, :], d2)
            best = int(np.argmin(options @ weights))
            pick = int(candidates[best])
        chosen.append(pick)
        closest = np.minimum(closest, np.maximum(_row_norms(points - points[pick]), 0.0))
    return np.asarray(chosen, dtype=np.int64)


def choose_initial(points: np.ndarray, n_centers: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """``n_centers`` rows of ``points`` chosen by ``random`` (uniform, without replacement) or ``kmeans++``."""
    if method == "kmeans++":
        index = kmeans_plusplus(points, np.ones(points.shape[0]), n_centers, rng)
    else:
        index = rng.choice(points.shape[0], size=n_centers, replace=False)
    return points[index].astype(np.float64, copy=True)


@dataclass
class LloydResult:
    centers: np.ndarray
    msd: float
    iterations: int


def weighted_lloyd(points: np.ndarray, weights: np.ndarray, init: np.ndarray, max_iter: int, tol: float) -> LloydResult:
    """Lloyd's algorithm on weighted points; stop at ``max_iter`` or a relative loss change < ``tol``."""
    centers = init.copy()
    k = centers.shape[0]
    total = float(weights.sum())
    previous = math.inf
    loss = math.inf
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        labels, d2 = nearest_center(points, centers)
        loss = float(weights @ d2)
        mass = np.bincount(labels, weights=weights, minlength=k)
        sums = sp.csr_matrix((weights, (labels, np.arange(points.shape[0]))), shape=(k, points.shape[0])) @ points
        filled = mass > 0
        centers[filled] = sums[filled] / mass[filled, None]
        for empty in np.flatnonzero(~filled):  # re-seed an empty cluster at the worst-served point
            far = int(np.argmax(weights * d2))
            centers[empty] = points[far]
            d2[far] = 0.0
        if previous < math.inf and abs(previous - loss) <= tol * max(previous, 1e-300):
            break
        previous = loss
    labels, d2 = nearest_center(points, centers)
    loss = float(weights @ d2)
    return LloydResult(centers, loss / total if total > 0 else 0.0, iteration)


class StreamingKMeans:
    """Stage 1: the K working centers and their weights ``N_c``, updated one mini-batch at a time."""

    def __init__(self, n_centers: int, half_life: int, rng: np.random.Generator) -> None:
        self.n_centers = n_centers
        self.half_life = half_life
        self.rng = rng
        self.centers: np.ndarray | None = None
        self.counts: np.ndarray | None = None
        self.seen = 0

    @property
    def initialized(self) -> bool:
        return self.centers is not None

    def initialize(self, sample: np.ndarray, method: str) -> None:
        """Pick the working centers from the first mini-batch (fewer when the sample has fewer distinct rows)."""
        count = min(self.n_centers, sample.shape[0])
        logger.info("Effective batch size used to initialize is %d", sample.shape[0])
        self.centers = choose_initial(sample, count, method, self.rng)
        self.counts = np.zeros(count, dtype=np.float64)
        self.n_centers = count

    def partial_fit(self, batch: np.ndarray) -> None:
        """One mini-batch update: assign, then move each center towards its points' mean with p_c = n_c/(N_c+n_c)."""
        if batch.shape[0] == 0:
            return
        n_new, sums = self.statistics(batch)
        self.apply(n_new, sums, batch.shape[0])

    def statistics(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A mini-batch's sufficient statistics against the current centers: points per center ``n_c`` and their
        sums (K x d). The hosts of one job add theirs up before :meth:`apply`
        (docs/algorithms/kmeans.md#distributed-training)."""
        if self.centers is None:
            raise RuntimeError("initialize() must be called before statistics()")
        rows = batch.shape[0]
        labels = nearest_labels(batch, self.centers)
        n_new = np.bincount(labels, minlength=self.n_centers).astype(np.float64)
        sums = sp.csr_matrix((np.ones(rows), (labels, np.arange(rows))), shape=(self.n_centers, rows)) @ batch
        return n_new, np.asarray(sums)

    def apply(self, n_new: np.ndarray, sums: np.ndarray, rows: int) -> None:
        """Decay ``N_c`` by ``rows`` (with a half-life), then move every center that got points to the running mean."""
        if self.centers is None or self.counts is None:
            raise RuntimeError("initialize() must be called before apply()")
        if rows == 0:
            return
        if self.half_life > 0:
            self.counts *= 2.0 ** (-rows / self.half_life)
        hit = n_new > 0
        rate = n_new[hit] / (self.counts[hit] + n_new[hit])
        means = sums[hit] / n_new[hit, None]
        self.centers[hit] += rate[:, None] * (means - self.centers[hit])
        self.counts += n_new
        self.seen += rows

    def follow(self, centers: np.ndarray) -> None:
        """Take the centers the leader computed (a host that only contributes statistics)."""
        self.centers = np.array(centers, dtype=np.float64)
        self.n_centers = self.centers.shape[0]


def reduce_centers(
    centers: np.ndarray,
    weights: np.ndarray,
    k: int,
    *,
    trials: int,
    init_method: str,
    max_iter: int,
    tol: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Stage 2: shrink the working centers into ``k`` with the best of ``trials`` weighted Lloyd runs."""
    keep = weights > 0
    if int(keep.sum()) >= k:
        centers, weights = centers[keep], weights[keep]
    else:  # too few centers got points (duplicates): let the idle ones count a little
        weights = np.maximum(weights, 1e-12)
    logger.info("shrinking %d centers into %d", centers.shape[0], k)
    best: LloydResult | None = None
    for attempt in range(trials):
        if init_method == "kmeans++":
            init = centers[kmeans_plusplus(centers, weights, k, rng)]
        else:
            init = centers[rng.choice(centers.shape[0], size=k, replace=False)]
        result = weighted_lloyd(centers, weights, init, max_iter, tol)
        logger.info("local kmeans attempt #%d. Current mean square distance %f", attempt, result.msd)
        if best is None or result.msd < best.msd:
            best = result
    assert best is not None  # trials >= 1 by validation
    logger.info("finished shrinking process. Mean Square Distance = %f", best.msd)
    return best.centers


@dataclass
class Scores:
    """Running ``ssd`` and row count of data scored against fixed centers."""

    ssd: float = 0.0
    rows: int = 0

    def add(self, batch: np.ndarray, centers: np.ndarray) -> None:
        _, d2 = nearest_center(batch, centers)
        self.ssd += float(d2.sum())
        self.rows += batch.shape[0]

    @property
    def msd(self) -> float:
        return self.ssd / self.rows if self.rows else math.nan
