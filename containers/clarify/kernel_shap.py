"""Kernel SHAP (spec §1.6), vectorised: one coalition design for every row, one weighted least-squares solve.

* Players are the explained features; every other feature keeps the row's value.
* v_x(z) = (1/K)·Σ_k g(f(h(x, b_k, z))), g = logit when ``use_logit``, else identity.
* Coalitions: every subset when 2^M − 2 ≤ ``num_samples``; otherwise whole subset sizes are enumerated (with their
  complements) while the budget allows, and the rest are sampled by the Shapley kernel's size weights with ``seed``,
  as the open-source ``shap`` package does. Weights π(z) = (M−1)/(C(M,|z|)·|z|·(M−|z|)).
* Σ_j φ_j = v_x(1) − v_x(0) is imposed exactly by eliminating the last player.
* All predictions go through ``model.predict`` in large batches (a few thousand rows × samples × baseline rows).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from containers.clarify.predictor import Model

logger = logging.getLogger(__name__)

__all__ = ["ShapResult", "coalitions", "default_num_samples", "explain", "global_values"]

ROWS_PER_CALL = 1_000_000
_EPS = 1e-12


@dataclass(frozen=True)
class ShapResult:
    features: list[str]
    outputs: list[str]
    expected_value: np.ndarray  # (k,)
    local: np.ndarray  # (n, players, k)


def default_num_samples(players: int) -> int:
    """The ``shap`` package's default budget, 2M + 2048 (Clarify's own rule is undocumented)."""
    return 2 * players + 2048


def _all_subsets(m: int) -> tuple[np.ndarray, np.ndarray]:
    codes = np.arange(1, 2**m - 1)
    masks = ((codes[:, None] >> np.arange(m)) & 1).astype(bool)
    sizes = masks.sum(axis=1)
    weights = (m - 1) / (np.array([math.comb(m, s) for s in sizes]) * sizes * (m - sizes))
    return masks, weights


def _size_weights(m: int) -> np.ndarray:
    half = math.ceil((m - 1) / 2.0)
    paired = (m - 1) // 2
    weights = np.array([(m - 1.0) / (s * (m - s)) for s in range(1, half + 1)])
    weights[:paired] *= 2
    return weights / weights.sum()


def _subsets_of_size(m: int, size: int) -> np.ndarray:
    from itertools import combinations

    rows = np.zeros((math.comb(m, size), m), dtype=bool)
    for i, members in enumerate(combinations(range(m), size)):
        rows[i, list(members)] = True
    return rows


def _sampled(m: int, budget: int, weights: np.ndarray, first: int, rng: np.random.Generator) -> dict[bytes, list[Any]]:
    paired = (m - 1) // 2
    remaining = weights[first:] / weights[first:].sum()
    drawn: dict[bytes, list[Any]] = {}
    used = 0
    attempts = 0
    while used < budget and attempts < budget * 50:
        attempts += 1
        size = first + 1 + int(rng.choice(len(remaining), p=remaining))
        mask = np.zeros(m, dtype=bool)
        mask[rng.permutation(m)[:size]] = True
        for candidate in (mask, ~mask) if size <= paired else (mask,):
            key = candidate.tobytes()
            if key in drawn:
                drawn[key][1] += 1.0
            elif used < budget:
                drawn[key] = [candidate, 1.0]
                used += 1
    return drawn


def coalitions(m: int, num_samples: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The coalition masks ``(S, m)`` and their kernel weights ``(S,)``."""
    if 2**m - 2 <= num_samples:
        return _all_subsets(m)
    weights = _size_weights(m)
    paired = (m - 1) // 2
    masks: list[np.ndarray] = []
    kernel: list[np.ndarray] = []
    budget = num_samples
    weight_left = 1.0
    full = 0
    for index, share in enumerate(weights):
        size = index + 1
        n_subsets = math.comb(m, size) * (2 if index < paired else 1)
        if budget * share / weight_left < n_subsets - 1e-8:
            break
        block = _subsets_of_size(m, size)
        each = share / n_subsets
        masks.append(block)
        kernel.append(np.full(len(block), each))
        if index < paired:
            masks.append(~block)
            kernel.append(np.full(len(block), each))
        budget -= n_subsets
        weight_left -= share
        full += 1
    if budget > 0 and full < len(weights):
        drawn = _sampled(m, budget, weights, full, np.random.default_rng(seed))
        counts = np.array([entry[1] for entry in drawn.values()])
        masks.append(np.array([entry[0] for entry in drawn.values()]))
        kernel.append(counts * (weight_left / counts.sum()))
    return np.vstack(masks), np.concatenate(kernel)


def _link(values: np.ndarray, use_logit: bool) -> np.ndarray:
    if not use_logit:
        return values
    clipped = np.clip(values, _EPS, 1 - _EPS)
    return np.log(clipped / (1 - clipped))


def _compose(rows: np.ndarray, baseline: np.ndarray, masks: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Rows ``(n, S, K, p)``: the instance's values where the coalition holds the player, else the baseline's."""
    n, k = len(rows), len(baseline)
    full = np.broadcast_to(rows[:, None, None, :], (n, len(masks), k, rows.shape[1])).copy()
    base = np.broadcast_to(baseline[None, None, :, :], full.shape)
    take = np.zeros((len(masks), rows.shape[1]), dtype=bool)
    take[:, columns] = ~masks  # players outside the coalition come from the baseline
    chosen = np.broadcast_to(take[None, :, None, :], full.shape)
    full[chosen] = base[chosen]
    return full.reshape(-1, rows.shape[1])


def _values(
    model: Model, composed: np.ndarray, template: pd.DataFrame, groups: tuple[int, ...], link: bool
) -> np.ndarray:
    frame = pd.DataFrame(composed, columns=template.columns)
    if composed.dtype == object:
        frame = frame.astype(template.dtypes.to_dict())
    out = _link(model.predict(frame).matrix(), link)
    return out.reshape((*groups, out.shape[1])).mean(axis=len(groups) - 1)


def _solve(
    masks: np.ndarray, weights: np.ndarray, values: np.ndarray, empty: np.ndarray, full: np.ndarray
) -> np.ndarray:
    """φ ``(n, p, k)`` from v(z) ``(n, S, k)`` by weighted least squares with Σφ = v(1) − v(0)."""
    n, _, k = values.shape
    p = masks.shape[1]
    delta = full - empty  # (n, k)
    if p == 1:
        return delta[:, None, :]
    z = masks.astype(np.float64)
    design = z[:, :-1] - z[:, -1:]
    target = values - empty[:, None, :] - z[None, :, -1, None] * delta[:, None, :]  # (n, S, k)
    root = np.sqrt(weights)[:, None]
    rhs = (target * root[None, :, :]).transpose(1, 0, 2).reshape(len(weights), n * k)
    solution, *_ = np.linalg.lstsq(design * root, rhs, rcond=None)
    head = solution.reshape(p - 1, n, k).transpose(1, 0, 2)
    last = delta - head.sum(axis=1)
    return np.concatenate([head, last[:, None, :]], axis=1)


def _as_array(frame: pd.DataFrame) -> np.ndarray:
    numeric = all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in frame.dtypes)
    return frame.to_numpy(dtype=np.float64) if numeric else frame.to_numpy(dtype=object)


def explain(
    model: Model,
    rows: pd.DataFrame,
    baseline: pd.DataFrame,
    players: list[str],
    *,
    num_samples: int | None = None,
    seed: int | None = None,
    use_logit: bool = False,
) -> ShapResult:
    """Local SHAP values of ``players`` for every row of ``rows`` against ``baseline`` (same columns)."""
    columns = np.array([rows.columns.get_loc(name) for name in players])
    masks, weights = coalitions(len(players), num_samples or default_num_samples(len(players)), seed)
    data, base = _as_array(rows), _as_array(baseline.loc[:, rows.columns])
    base_out = model.predict(baseline.loc[:, rows.columns])
    expected = _link(base_out.matrix(), use_logit).mean(axis=0)
    logger.info(
        "kernel SHAP: %d rows, %d players, %d coalitions, %d baseline rows",
        len(data),
        len(players),
        len(masks),
        len(base),
    )
    block = max(1, ROWS_PER_CALL // (len(masks) + 2) // len(base))
    parts = []
    for start in range(0, len(data), block):
        chunk = data[start : start + block]
        every = np.vstack([np.zeros((1, len(players)), dtype=bool), np.ones((1, len(players)), dtype=bool), masks])
        composed = _compose(chunk, base, every, columns)
        values = _values(model, composed, rows, (len(chunk), len(every), len(base)), use_logit)
        parts.append(_solve(masks, weights, values[:, 2:], values[:, 0], values[:, 1]))
    return ShapResult(list(players), base_out.output_names(), expected, np.concatenate(parts, axis=0))


def global_values(local: np.ndarray, method: str) -> np.ndarray:
    """Aggregate ``(n, p, k)`` local values to ``(p, k)``: mean_abs, median or mean_sq."""
    if method == "median":
        return np.median(local, axis=0)
    if method == "mean_sq":
        return np.mean(local**2, axis=0)
    return np.mean(np.abs(local), axis=0)
