"""Kernel SHAP (docs/clarify.md#kernel-shap-kernel_shappy), vectorised: rows that vary in the same features share one
coalition design and solve.

* Players are the explained features; every other feature keeps the row's value.
* Per row, a player whose value equals its value in every baseline row (missing equals missing) does not vary: no
  coalition can change the model's input through it, so it gets exactly 0 and is left out of the regression, as the
  ``shap`` package's ``KernelExplainer`` does with its varying-feature mask. Rows are grouped by which players vary.
* v_x(z) = (1/K)·Σ_k g(f(h(x, b_k, z))), g = logit when ``use_logit``, else identity.
* Coalitions of the M varying players: every subset when 2^M − 2 ≤ the budget; otherwise whole subset sizes are
  enumerated (with their complements) while the budget allows, and the rest are sampled by the Shapley kernel's size
  weights with ``seed``, as ``shap`` does. Weights π(z) = (M−1)/(C(M,|z|)·|z|·(M−|z|)). The budget is
  ``num_samples``, else 2M + 2048 (``shap``'s rule, with M the row's varying players).
* Σ_j φ_j = v_x(1) − v_x(0) is imposed exactly by eliminating the last varying player; one varying player gets it all.
* All predictions go through ``model.predict`` in large batches of even size (at most ``ROWS_PER_CALL`` rows, across
  groups), ``CALLS_IN_FLIGHT`` at a time, as frames of categorical columns: a synthetic cell only ever holds a value
  of the explained rows or of the baseline, so the rows are int32 codes into per-column dictionaries of those values
  (no float copy; an encoder formats each distinct value once).
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from containers.clarify.model_access.predictor import Model

logger = logging.getLogger(__name__)

__all__ = ["ShapResult", "coalitions", "default_num_samples", "explain", "global_values", "varying"]

ROWS_PER_CALL = 250_000
CALLS_IN_FLIGHT = 2
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


@dataclass(frozen=True)
class _Dictionaries:
    """Per column, the distinct values of the baseline and the explained rows (a composed row holds nothing else),
    and every baseline row's and explained row's code into them (``-1``: missing)."""

    categories: list[pd.Index]
    base_codes: np.ndarray  # (K, p)
    row_codes: np.ndarray  # (n, p)


def _dictionaries(data: np.ndarray, base: np.ndarray) -> _Dictionaries:
    codes = np.empty((len(base) + len(data), data.shape[1]), dtype=np.int32)
    categories = []
    for column in range(data.shape[1]):
        values = np.concatenate([base[:, column], data[:, column]])
        codes[:, column], uniques = pd.factorize(values, use_na_sentinel=True)
        categories.append(pd.Index(uniques))
    return _Dictionaries(categories, codes[: len(base)], codes[len(base) :])


def _compose(row_codes: np.ndarray, base_codes: np.ndarray, masks: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Column-major codes ``(p, n·S·K)``: per row, coalition and baseline row, the instance's value where the
    coalition holds the player, else the baseline's. Each column is one gather straight into place (from a small
    ``(n, 2, K)`` table: baseline codes, then the row's code, indexed by the coalition's bit)."""
    n, s, k = len(row_codes), len(masks), len(base_codes)
    out = np.empty((row_codes.shape[1], n * s * k), dtype=np.int32)
    player = np.full(row_codes.shape[1], -1)
    player[columns] = np.arange(len(columns))
    table = np.empty((n, 2, k), dtype=np.int32)
    for column in range(row_codes.shape[1]):
        target = out[column].reshape(n, s, k)
        if player[column] < 0:
            target[...] = row_codes[:, None, None, column]
            continue
        table[:, 0, :] = base_codes[None, :, column]  # players outside the coalition come from the baseline
        table[:, 1, :] = row_codes[:, column, None]
        np.take(table, masks[:, player[column]].astype(np.intp), axis=1, out=target)
    return out


def _predict(
    model: Model, composed: np.ndarray, dictionaries: _Dictionaries, template: pd.DataFrame, link: bool
) -> np.ndarray:
    """The model's answer for the composed rows, given as a frame of categorical columns over ``dictionaries`` (the
    codes ``(p, rows)`` are used as they are: no values are materialised, and an encoder formats each distinct value
    once)."""
    frame = pd.DataFrame(
        {
            name: pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories))
            for name, codes, categories in zip(template.columns, composed, dictionaries.categories, strict=True)
        },
        copy=False,
    )
    return _link(model.predict(frame).matrix(), link)


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
    solution = _least_squares(design * root, rhs)
    head = solution.reshape(p - 1, n, k).transpose(1, 0, 2)
    last = delta - head.sum(axis=1)
    return np.concatenate([head, last[:, None, :]], axis=1)


def _least_squares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``argmin |a x - b|`` for every column of ``b``: by QR when ``a`` (coalitions x players - 1, tall and thin)
    has full column rank, one small triangular solve for all rows' targets; by SVD (``lstsq``) otherwise."""
    q, r = np.linalg.qr(a)
    diagonal = np.abs(np.diag(r))
    if diagonal.size and diagonal.min() > diagonal.max() * max(a.shape) * np.finfo(np.float64).eps:
        return np.linalg.solve(r, q.T @ b)
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    return solution


def _as_array(frame: pd.DataFrame) -> np.ndarray:
    numeric = all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in frame.dtypes)
    return frame.to_numpy(dtype=np.float64) if numeric else frame.to_numpy(dtype=object)


def varying(rows: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """``(n, p)``: whether each row's value differs from the baseline's in at least one baseline row."""
    missing = pd.isna(rows)
    differs = np.zeros(rows.shape, dtype=bool)
    for background in baseline:
        unequal = np.asarray(rows != background[None, :], dtype=bool)
        differs |= unequal & ~(missing & pd.isna(background)[None, :])
    return differs


_NO_COALITION = (np.zeros((0, 1), dtype=bool), np.zeros(0))


@dataclass(frozen=True)
class _Group:
    """Rows whose varying players are ``active`` (positions among the players), and their coalition design."""

    rows: np.ndarray
    active: np.ndarray
    masks: np.ndarray  # (S, len(active)): the sampled coalitions, without the empty and the full one
    weights: np.ndarray

    @property
    def evaluated(self) -> np.ndarray:
        """The coalitions to evaluate: the empty one, the full one, then ``masks``."""
        m = len(self.active)
        return np.vstack([np.zeros((1, m), dtype=bool), np.ones((1, m), dtype=bool), self.masks])


def _groups(vary: np.ndarray, num_samples: int | None, seed: int | None) -> list[_Group]:
    """One group per distinct varying pattern with at least one varying player (the others are all 0)."""
    patterns, inverse = np.unique(vary, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    designs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    groups = []
    for index, pattern in enumerate(patterns):
        m = int(pattern.sum())
        if m == 0:
            continue
        if m not in designs:
            designs[m] = coalitions(m, num_samples or default_num_samples(m), seed) if m > 1 else _NO_COALITION
        masks, weights = designs[m]
        groups.append(_Group(np.flatnonzero(inverse == index), np.flatnonzero(pattern), masks, weights))
    return groups


@dataclass(frozen=True)
class _Problem:
    """What every batch needs: the model, the baseline, the columns' dictionaries, where the players are, the link."""

    model: Model
    base: np.ndarray
    dictionaries: _Dictionaries
    columns: np.ndarray  # the players' column positions in ``data``
    template: pd.DataFrame
    use_logit: bool


def _batches(groups: list[_Group], baseline_rows: int) -> list[list[tuple[_Group, np.ndarray]]]:
    """(group, row indices) pieces, packed into calls of about even size, as few as keep each under ``ROWS_PER_CALL``
    composed rows (or one row's worth, when a single row needs more): no small last call left to run alone."""
    total = sum(len(group.rows) * (len(group.masks) + 2) * baseline_rows for group in groups)
    limit = max(1, math.ceil(total / max(1, math.ceil(total / ROWS_PER_CALL))))
    batches: list[list[tuple[_Group, np.ndarray]]] = []
    pending: list[tuple[_Group, np.ndarray]] = []
    size = 0
    for group in groups:
        per_row = (len(group.masks) + 2) * baseline_rows
        block = max(1, limit // per_row)
        for start in range(0, len(group.rows), block):
            chunk = group.rows[start : start + block]
            if pending and size + len(chunk) * per_row > limit:
                batches.append(pending)
                pending, size = [], 0
            pending.append((group, chunk))
            size += len(chunk) * per_row
    if pending:
        batches.append(pending)
    return batches


def _evaluate(problem: _Problem, pieces: list[tuple[_Group, np.ndarray]], out: np.ndarray) -> None:
    """Predict every piece's composed rows in one call, then solve each piece into ``out[rows, active]``."""
    composed = [
        _compose(
            problem.dictionaries.row_codes[chunk],
            problem.dictionaries.base_codes,
            group.evaluated,
            problem.columns[group.active],
        )
        for group, chunk in pieces
    ]
    joined = composed[0] if len(composed) == 1 else np.concatenate(composed, axis=1)
    predictions = _predict(problem.model, joined, problem.dictionaries, problem.template, problem.use_logit)
    offset = 0
    for (group, chunk), part in zip(pieces, composed, strict=True):
        shape = (len(chunk), len(group.masks) + 2, len(problem.base), predictions.shape[1])
        values = predictions[offset : offset + part.shape[1]].reshape(shape).mean(axis=2)
        offset += part.shape[1]
        phi = _solve(group.masks, group.weights, values[:, 2:], values[:, 0], values[:, 1])
        out[np.ix_(chunk, group.active)] = phi


def _evaluate_all(problem: _Problem, batches: list[list[tuple[_Group, np.ndarray]]], out: np.ndarray) -> None:
    """Every batch, ``CALLS_IN_FLIGHT`` at a time: one batch's rows are composed, and its answers averaged and solved,
    while another's requests are at the model (the batches write disjoint rows of ``out``)."""
    if len(batches) == 1:
        _evaluate(problem, batches[0], out)
        return
    with ThreadPoolExecutor(max_workers=CALLS_IN_FLIGHT) as pool:
        futures = [pool.submit(_evaluate, problem, pieces, out) for pieces in batches]
        try:
            for future in futures:
                future.result()
        finally:
            for future in futures:
                future.cancel()


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
    columns = np.array([rows.columns.get_loc(name) for name in players], dtype=np.intp)
    data, base = _as_array(rows), _as_array(baseline.loc[:, rows.columns])
    base_out = model.predict(baseline.loc[:, rows.columns])
    expected = _link(base_out.matrix(), use_logit).mean(axis=0)
    groups = _groups(varying(data[:, columns], base[:, columns]), num_samples, seed)
    logger.info(
        "kernel SHAP: %d rows, %d players, %d baseline rows, %d varying-feature pattern(s), %d row(s) varying in none",
        len(data),
        len(players),
        len(base),
        len(groups),
        len(data) - sum(len(g.rows) for g in groups),
    )
    local = np.zeros((len(data), len(players), len(expected)))
    problem = _Problem(model, base, _dictionaries(data, base), columns, rows, use_logit)
    _evaluate_all(problem, _batches(groups, len(base)), local)
    return ShapResult(list(players), base_out.output_names(), expected, local)


def global_values(local: np.ndarray, method: str) -> np.ndarray:
    """Aggregate ``(n, p, k)`` local values to ``(p, k)``: mean_abs, median or mean_sq."""
    if method == "median":
        return np.median(local, axis=0)
    if method == "mean_sq":
        return np.mean(local**2, axis=0)
    return np.mean(np.abs(local), axis=0)
