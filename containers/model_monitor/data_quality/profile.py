"""One column's streaming profile: Deequ-style type counts, exact moments, a KLL sketch and value counts.

Values arrive as pyarrow arrays (text for CSV/JSON/capture data, typed for Parquet). Text is classified per value like
Deequ's ``DataType`` analyzer: Integral (``^[-+]? ?\\d+$``), Fractional (decimal or exponent form), Boolean
(``true``/``false``) or String; nulls are Unknown. Numeric values feed exact streaming moments (count, sum, mean, M2,
merged with Chan's formula, so ``std_dev`` is the population standard deviation) and the KLL sketch.

Value counts (for ``distinct_count``, categorical buckets and domain suggestions) are exact. A column that has only
numeric values stops counting once it has more than ``NUMERIC_DISTINCT_CAP`` distinct values (a continuous feature
needs no histogram); should such a column later turn out to be a String column, the analyzer counts it again in a
second pass (``needs_recount``).
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from containers.model_monitor.data_quality.kll import KLLSketch

logger = logging.getLogger(__name__)

__all__ = ["FRACTIONAL", "INTEGRAL", "ColumnProfile", "classify_text"]

INTEGRAL = r"^[-+]? ?\d+$"
FRACTIONAL = r"^[-+]? ?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$"
BOOLEAN = r"^(true|false)$"
NUMERIC_DISTINCT_CAP = 20_000
TYPE_NAMES = ("Integral", "Fractional", "Boolean", "String")


def classify_text(values: pa.Array, try_numeric: bool = True) -> tuple[np.ndarray, np.ndarray, int, int]:
    """For non-null text ``values``: (numeric values as float64, is-fractional mask over them, booleans, strings).

    The fast path is one float cast (cheap when it succeeds) plus a ``[.eE]`` scan to tell Integral from Fractional;
    a failed cast is expensive in pyarrow, so columns known to hold text skip it (``try_numeric=False``).
    """
    if len(values) == 0:
        return np.empty(0), np.empty(0, dtype=bool), 0, 0
    if try_numeric:
        try:
            as_float = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            as_float = None
        if as_float is not None and np.isfinite(as_float).all():
            fractional = pc.match_substring_regex(values, r"[.eE]").to_numpy(zero_copy_only=False)
            return as_float.astype(np.float64), np.asarray(fractional, dtype=bool), 0, 0
    is_int = np.asarray(pc.match_substring_regex(values, INTEGRAL).to_numpy(zero_copy_only=False), dtype=bool)
    is_num = np.asarray(pc.match_substring_regex(values, FRACTIONAL).to_numpy(zero_copy_only=False), dtype=bool)
    is_bool = np.asarray(pc.match_substring_regex(values, BOOLEAN).to_numpy(zero_copy_only=False), dtype=bool)
    numeric_text = pc.filter(values, pa.array(is_num))
    numeric = pc.cast(pc.replace_substring(numeric_text, " ", ""), pa.float64()).to_numpy(zero_copy_only=False)
    fractional = ~is_int[is_num]
    strings = int((~is_num & ~is_bool).sum())
    return numeric.astype(np.float64), fractional, int(is_bool.sum()), strings


class ColumnProfile:
    """Accumulates one column over chunks; ``inferred_type`` and the statistics are read at the end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.num_present = 0
        self.type_counts = dict.fromkeys(TYPE_NAMES, 0)
        self.num_count = 0
        self.num_sum = 0.0
        self.num_mean = 0.0
        self.num_m2 = 0.0
        self.num_min = np.inf
        self.num_max = -np.inf
        self.sketch = KLLSketch()
        self.counts: Counter[str] | None = Counter()
        self.needs_recount = False
        self._text_seen = False

    def update(self, column: pa.Array | pa.ChunkedArray) -> None:
        values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        present = pc.drop_null(values)
        if len(present) == 0:
            return
        self.num_present += len(present)
        kind = present.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            numeric = present.to_numpy(zero_copy_only=False).astype(np.float64)
            numeric = numeric[~np.isnan(numeric)]
            fractional = np.full(numeric.size, pa.types.is_floating(kind))
            booleans, strings = 0, 0
        elif pa.types.is_boolean(kind):
            numeric, fractional, booleans, strings = np.empty(0), np.empty(0, dtype=bool), len(present), 0
            present = pc.cast(present, pa.string())
        else:
            present = present if pa.types.is_string(kind) else pc.cast(present, pa.string())
            numeric, fractional, booleans, strings = classify_text(present, try_numeric=not self._text_seen)
            self._text_seen = self._text_seen or booleans + strings > 0
        n_frac = int(fractional.sum())
        self.type_counts["Fractional"] += n_frac
        self.type_counts["Integral"] += int(numeric.size) - n_frac
        self.type_counts["Boolean"] += booleans
        self.type_counts["String"] += strings
        self._add_numeric(numeric)
        self._count(present)

    def _add_numeric(self, numeric: np.ndarray) -> None:
        n = int(numeric.size)
        if n == 0:
            return
        mean = float(numeric.mean())
        m2 = float(((numeric - mean) ** 2).sum())
        total = self.num_count + n
        delta = mean - self.num_mean
        self.num_mean += delta * n / total
        self.num_m2 += m2 + delta * delta * self.num_count * n / total
        self.num_count = total
        self.num_sum += float(numeric.sum())
        self.num_min = min(self.num_min, float(numeric.min()))
        self.num_max = max(self.num_max, float(numeric.max()))
        self.sketch.update(numeric)

    def _count(self, present: pa.Array) -> None:
        if self.counts is None:
            return
        tally = pc.value_counts(present if pa.types.is_string(present.type) else pc.cast(present, pa.string()))
        has_strings = self.type_counts["String"] + self.type_counts["Boolean"] > 0
        if not has_strings and len(tally) > NUMERIC_DISTINCT_CAP:
            self._drop_counts()
            return
        for value, count in zip(tally.field(0).to_pylist(), tally.field(1).to_pylist(), strict=True):
            self.counts[value] += count
        if not has_strings and len(self.counts) > NUMERIC_DISTINCT_CAP:
            self._drop_counts()

    def _drop_counts(self) -> None:
        logger.debug("column %s: more than %d distinct numeric values, counts dropped", self.name, NUMERIC_DISTINCT_CAP)
        self.counts = None
        self.needs_recount = True

    def recount(self, column: pa.Array | pa.ChunkedArray) -> None:
        """Second pass for a String column whose counts were dropped while it looked numeric."""
        values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        present = pc.drop_null(values)
        if not pa.types.is_string(present.type):
            present = pc.cast(present, pa.string())
        if self.counts is None:
            self.counts = Counter()
        tally = pc.value_counts(present)
        for value, count in zip(tally.field(0).to_pylist(), tally.field(1).to_pylist(), strict=True):
            self.counts[value] += count

    @property
    def inferred_type(self) -> str:
        """Deequ's ``determineType``, with Boolean reported as String (Model Monitor knows no Boolean)."""
        counts = self.type_counts
        if self.num_present == 0:
            return "Unknown"
        if counts["String"] > 0 or counts["Boolean"] > 0:
            return "String"  # any String, Boolean mixed with numbers, or only Boolean (mapped to String)
        return "Fractional" if counts["Fractional"] > 0 else "Integral"

    @property
    def is_numeric(self) -> bool:
        return self.inferred_type in ("Integral", "Fractional")

    @property
    def std_dev(self) -> float:
        return float(np.sqrt(self.num_m2 / self.num_count)) if self.num_count else 0.0
