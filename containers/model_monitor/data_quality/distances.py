"""Distribution distances for ``baseline_drift_check`` (docs/reference/model-monitor-files.md#distribution-distances,
Deequ 2.0.2 ``Distance``; χ² from Deequ 2.0.3).

* numeric: L∞ distance between the two sketched CDFs over the union of retained items (the two-sample KS
  statistic; exact when both sketches still hold every value);
* categorical LInfinity: L∞ distance between the two PMFs over the union of values;
* Robust: ``max(0, linf - 1.8 * sqrt((n + m) / (n * m)))``;
* categorical ChiSquared: the p-value of a χ² goodness-of-fit of the current counts against the baseline
  frequencies, after regrouping rare categories (Cochran / Yates rules); NaN with fewer than two categories.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats as scipy_stats

from containers.model_monitor.data_quality.kll import KLLSketch

__all__ = ["ROBUST_C_ALPHA", "chi_squared_p_value", "linf_categorical", "linf_numeric", "robust"]

ROBUST_C_ALPHA = 1.8


def linf_numeric(baseline: KLLSketch, current: KLLSketch) -> float:
    base_items, _ = baseline.weighted_items()
    curr_items, _ = current.weighted_items()
    if base_items.size == 0 or curr_items.size == 0:
        return 0.0
    points = np.union1d(base_items, curr_items)
    return float(np.max(np.abs(baseline.cdf(points) - current.cdf(points))))


def linf_categorical(baseline: Mapping[str, float], current: Mapping[str, float]) -> float:
    n = sum(baseline.values())
    m = sum(current.values())
    if n == 0 or m == 0:
        return 0.0
    keys = set(baseline) | set(current)
    return max(abs(baseline.get(k, 0.0) / n - current.get(k, 0.0) / m) for k in keys)


def robust(distance: float, n: float, m: float) -> float:
    """Deequ's correction for small samples: subtract ``c_alpha * sqrt((n+m)/(n*m))``, floored at 0."""
    if n <= 0 or m <= 0:
        return distance
    return max(0.0, distance - ROBUST_C_ALPHA * math.sqrt((n + m) / (n * m)))


def chi_squared_p_value(baseline: Mapping[str, float], current: Mapping[str, float]) -> float:
    """P-value of the current counts against the baseline proportions; NaN when fewer than two categories remain."""
    n = sum(baseline.values())
    m = sum(current.values())
    if n == 0 or m == 0:
        return math.nan
    keys = sorted(set(baseline) | set(current), key=lambda k: -baseline.get(k, 0.0))
    expected = np.array([baseline.get(k, 0.0) / n * m for k in keys])
    observed = np.array([current.get(k, 0.0) for k in keys])
    expected, observed = _regroup(expected, observed)
    if expected.size < 2:
        return math.nan
    if np.any(expected == 0):
        return 0.0 if np.any(observed[expected == 0] > 0) else math.nan
    return float(scipy_stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue)


def _regroup(expected: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge the rarest categories into one until Cochran (2 cells: all >= 10) or Yates (> 2: <= 20% below 5) holds."""
    expected, observed = expected.copy(), observed.copy()
    while expected.size > 2:
        if np.mean(expected < 5) <= 0.2:
            return expected, observed
        order = np.argsort(expected)
        merged_e = expected[order[0]] + expected[order[1]]
        merged_o = observed[order[0]] + observed[order[1]]
        keep = order[2:]
        expected = np.append(expected[keep], merged_e)
        observed = np.append(observed[keep], merged_o)
    if expected.size == 2 and np.any(expected < 10):
        return np.array([expected.sum()]), np.array([observed.sum()])
    return expected, observed
