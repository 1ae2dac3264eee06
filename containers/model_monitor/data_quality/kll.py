"""A mergeable KLL quantile sketch (Karnin, Lang, Liberty 2016), shaped like Deequ's ``KLLSketch``.

Parameters are Deequ's defaults, which Model Monitor writes into ``statistics.json``: sketch size ``k = 2048`` and
shrinking factor ``c = 0.64``. The sketch is a stack of compactors; level ``h`` holds items of weight ``2**h``. With
``H`` levels the capacity of level ``h`` is ``max(2, ceil(k * c**(H - 1 - h)))``, so the top level holds ``k`` items
and the whole sketch at most about ``k / (1 - c)`` (~5,700) items, however many values were added.

A level at or over its capacity is *compacted*: sorted, and every other item (starting at a random offset 0 or 1)
is promoted to the next level with twice the weight; an odd item out stays behind. One compaction of level ``h``
moves the rank of any query point by at most ``2**h``; with these capacities the normalised rank error is
``O(1/k)`` with high probability (about 0.1-0.3% at ``k = 2048``, measured by ``benchmarks/kll_rank_error.py``).

Updates are vectorised: a whole chunk is appended to level 0 and compacted in one sort, so large chunks cost
``O(n log n)`` numpy work and no Python loop per value. Two sketches merge level by level (``merge``), which is what
makes the statistics of a partitioned dataset combinable. Compaction offsets come from a seeded generator, so the
same input in the same chunks gives the same sketch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_K", "DEFAULT_SHRINKING_FACTOR", "KLLSketch"]

DEFAULT_K = 2048
DEFAULT_SHRINKING_FACTOR = 0.64
FloatArray = npt.NDArray[np.float64]


class KLLSketch:
    """Streaming quantile sketch over float values (NaN is ignored by callers, never added)."""

    def __init__(self, k: int = DEFAULT_K, c: float = DEFAULT_SHRINKING_FACTOR, seed: int = 0) -> None:
        if k < 2 or not 0.5 <= c <= 1.0:
            raise ValueError(f"KLL parameters out of range: k={k} (>= 2), c={c} (0.5..1)")
        self.k = k
        self.c = c
        self._rng = np.random.default_rng(seed)
        self.levels: list[FloatArray] = [np.empty(0, dtype=np.float64)]
        self.count = 0

    def capacity(self, level: int) -> int:
        depth = len(self.levels) - 1 - level
        return max(2, math.ceil(self.k * self.c**depth))

    def update(self, values: npt.ArrayLike) -> None:
        """Add a batch of values (any array-like of floats, NaN-free)."""
        batch = np.asarray(values, dtype=np.float64).ravel()
        if batch.size == 0:
            return
        self.levels[0] = np.concatenate([self.levels[0], batch])
        self.count += int(batch.size)
        self._compress()

    def merge(self, other: KLLSketch) -> None:
        """Fold ``other`` into this sketch (both keep their guarantees; ``other`` is left untouched)."""
        while len(self.levels) < len(other.levels):
            self.levels.append(np.empty(0, dtype=np.float64))
        for height, items in enumerate(other.levels):
            self.levels[height] = np.concatenate([self.levels[height], items])
        self.count += other.count
        self._compress()

    def _compress(self) -> None:
        height = 0
        while height < len(self.levels):
            items = self.levels[height]
            if items.size >= self.capacity(height):
                if height + 1 == len(self.levels):
                    self.levels.append(np.empty(0, dtype=np.float64))
                ordered = np.sort(items)
                keep_last = ordered.size % 2 == 1
                body = ordered[:-1] if keep_last else ordered
                offset = int(self._rng.integers(2))
                self.levels[height + 1] = np.concatenate([self.levels[height + 1], body[offset::2]])
                self.levels[height] = ordered[-1:] if keep_last else np.empty(0, dtype=np.float64)
            height += 1

    # -- queries ---------------------------------------------------------------------------------------------------

    def weighted_items(self) -> tuple[FloatArray, FloatArray]:
        """All retained items sorted, with their weights (``2**level``)."""
        if not self.levels:
            return np.empty(0), np.empty(0)
        items = np.concatenate(self.levels)
        weights = np.concatenate([np.full(lvl.size, float(2**h)) for h, lvl in enumerate(self.levels)])
        order = np.argsort(items, kind="stable")
        return items[order], weights[order]

    @property
    def total_weight(self) -> float:
        return float(sum(lvl.size * 2**h for h, lvl in enumerate(self.levels)))

    def rank(self, values: npt.ArrayLike, inclusive: bool = False) -> FloatArray:
        """Estimated number of added values ``< v`` (``<= v`` when ``inclusive``) for each ``v``."""
        items, weights = self.weighted_items()
        cumulative = np.concatenate([[0.0], np.cumsum(weights)])
        query = np.asarray(values, dtype=np.float64)
        positions = np.searchsorted(items, query, side="right") if inclusive else np.searchsorted(items, query)
        return np.asarray(cumulative[positions], dtype=np.float64)

    def cdf(self, values: npt.ArrayLike) -> FloatArray:
        total = self.total_weight
        if total == 0:
            return np.zeros(np.shape(values))
        return self.rank(values, inclusive=True) / total

    def quantiles(self, fractions: npt.ArrayLike) -> FloatArray:
        """The item at normalised rank ``q`` for each ``q`` in [0, 1]."""
        items, weights = self.weighted_items()
        if items.size == 0:
            return np.full(np.shape(fractions), np.nan)
        cumulative = np.cumsum(weights)
        targets = np.asarray(fractions, dtype=np.float64) * cumulative[-1]
        index = np.clip(np.searchsorted(cumulative, targets, side="left"), 0, items.size - 1)
        return np.asarray(items[index], dtype=np.float64)

    # -- statistics.json ---------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {
            "parameters": {"c": self.c, "k": float(self.k)},
            "data": [[float(v) for v in lvl] for lvl in self.levels],
        }

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> KLLSketch:
        """Rebuild a sketch from ``statistics.json``'s ``kll.sketch`` (items at level ``h`` weigh ``2**h``)."""
        parameters = raw.get("parameters") or {}
        data = raw.get("data") or []
        if not isinstance(parameters, dict) or not isinstance(data, Sequence):
            raise ValueError("a KLL sketch needs 'parameters' (an object) and 'data' (a list of lists)")
        sketch = cls(
            k=int(float(parameters.get("k", DEFAULT_K))), c=float(parameters.get("c", DEFAULT_SHRINKING_FACTOR))
        )
        sketch.levels = [np.asarray(level, dtype=np.float64) for level in data] or [np.empty(0)]
        sketch.count = int(sketch.total_weight)
        return sketch
