"""Partial dependence (docs/clarify.md#pdp-pdppy): set a feature to each grid value in every row, predict, average.

Numerical features: ``grid_resolution`` equal buckets over [min, max]; ``feature_values`` are the bucket centres and
``data_distribution`` the share of rows per bucket. Categorical features: the unique values and their shares.
Each feature's whole grid goes to the model in one batch.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from containers.clarify.model_access.predictor import Model

logger = logging.getLogger(__name__)

__all__ = ["partial_dependence"]

MAX_ROWS = 5_000


def _grid(column: pd.Series, resolution: int) -> tuple[str, list[Any], list[float]]:
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64)
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        edges = np.linspace(low, high, resolution + 1)
        counts, _ = np.histogram(values[~np.isnan(values)], bins=edges)
        centres = (edges[:-1] + edges[1:]) / 2
        return "numerical", centres.tolist(), (counts / max(1, counts.sum())).tolist()
    shares = column.value_counts(normalize=True, sort=False)
    return "categorical", [v.item() if hasattr(v, "item") else v for v in shares.index], shares.tolist()


def _one(model: Model, rows: pd.DataFrame, feature: str, resolution: int) -> dict[str, Any]:
    column = rows[feature]
    if column.dtype == object and column.astype(str).str.contains(" ").mean() > 0.5:
        return {"feature_name": feature, "data_type": "free_text", "error": "PDP does not support free-text features"}
    kind, values, shares = _grid(column, resolution)
    repeated = pd.concat([rows] * len(values), ignore_index=True)
    grid_column = np.repeat(np.array(values, dtype=object), len(rows))
    repeated[feature] = grid_column.astype(np.float64) if kind == "numerical" else grid_column
    output = model.predict(repeated)
    means = output.matrix().reshape(len(values), len(rows), -1).mean(axis=1)  # (grid, k)
    return {
        "feature_name": feature,
        "data_type": kind,
        "feature_values": values,
        "data_distribution": shares,
        "model_predictions": means.T.tolist(),
        "label_headers": output.output_names(),
    }


def partial_dependence(
    model: Model, rows: pd.DataFrame, features: list[str], resolution: int, seed: int | None
) -> list[dict[str, Any]]:
    """One PDP entry per feature, on at most ``MAX_ROWS`` rows (sampled with ``seed``)."""
    if len(rows) > MAX_ROWS:
        rows = rows.sample(n=MAX_ROWS, random_state=seed or 0)
    rows = rows.reset_index(drop=True)
    logger.info("PDP for %s on %d rows", features, len(rows))
    return [_one(model, rows, feature, resolution) for feature in features]
