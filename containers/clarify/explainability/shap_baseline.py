"""The SHAP baseline: the user's rows (inline or a file/S3 object), or cluster centres of the dataset.

Without a baseline the dataset is clustered with K-means on the numeric columns (categorical columns one-hot encoded
for the distance; a centre takes each categorical column's most frequent value among the cluster's members, as
K-prototypes would). ``num_clusters`` gives K; without it K is the smallest value in 1..12 whose inertia is within
10 % of the inertia at K = 12 (an elbow rule: Clarify's own search is undocumented).
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from containers.clarify.config import AnalysisConfig, ShapConfig
from containers.clarify.dataset import _path_value
from containers.clarify.paths import search_path
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["MAX_CLUSTERS", "cluster_baseline", "resolve_baseline"]

MAX_CLUSTERS = 12
CLUSTER_SAMPLE_ROWS = 20_000
ELBOW_TOLERANCE = 0.10


def _rows_frame(rows: list[Any], features: pd.DataFrame, config: AnalysisConfig) -> pd.DataFrame:
    if rows and isinstance(rows[0], dict):
        if not config.features:
            raise UserError("methods.shap.baseline: JSON records need the top-level 'features' JMESPath.")
        rows = [_path_value(r, config.features) for r in rows]
    width = features.shape[1]
    if any(not isinstance(r, list) or len(r) != width for r in rows):
        raise UserError(
            f"methods.shap.baseline: every row must hold the {width} feature values {list(features.columns)}. "
            "Fix: write the baseline rows with features only, in dataset order."
        )
    frame = pd.DataFrame(rows, columns=features.columns)
    for column in features.columns:
        if pd.api.types.is_numeric_dtype(features[column].dtype):
            frame[column] = pd.to_numeric(frame[column])
    return frame


def _read_uri(uri: str) -> str:
    if not uri.startswith("s3://"):
        return search_path(uri).read_text(encoding="utf-8")
    import boto3  # lazily: only S3 baselines need it

    bucket, _, key = uri[5:].partition("/")
    with tempfile.TemporaryDirectory(prefix="clarify-baseline-") as scratch:
        target = Path(scratch) / "baseline"
        boto3.client("s3").download_file(bucket, key, str(target))
        return target.read_text(encoding="utf-8")


def _parse_baseline_text(text: str, config: AnalysisConfig) -> list[Any]:
    if config.dataset_type == "text/csv":
        return pd.read_csv(io.StringIO(text), header=None).to_numpy(dtype=object).tolist()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def resolve_baseline(
    shap: ShapConfig, config: AnalysisConfig, features: pd.DataFrame, seed: int | None
) -> pd.DataFrame:
    """The baseline rows as a frame with ``features``' columns and dtypes."""
    if shap.baseline is None:
        return cluster_baseline(features, shap.num_clusters, seed)
    if isinstance(shap.baseline, str):
        rows = _parse_baseline_text(_read_uri(shap.baseline), config)
    else:
        rows = [list(r) if isinstance(r, (list, tuple)) else r for r in shap.baseline]
    if not rows:
        raise UserError("methods.shap.baseline is empty. Fix: give at least one row, or leave it out.")
    return _rows_frame(rows, features, config)


def _choose_k(matrix: np.ndarray, seed: int | None) -> int:
    top = min(MAX_CLUSTERS, len(np.unique(matrix, axis=0)))
    inertias = [KMeans(n_clusters=k, n_init=3, random_state=seed or 0).fit(matrix).inertia_ for k in range(1, top + 1)]
    floor = inertias[-1]
    spread = inertias[0] - floor
    for k, inertia in enumerate(inertias, start=1):
        if inertia - floor <= ELBOW_TOLERANCE * spread:
            return k
    return top


def cluster_baseline(features: pd.DataFrame, num_clusters: int | None, seed: int | None) -> pd.DataFrame:
    """Cluster centres of ``features`` (numeric means, categorical modes)."""
    sample = features.sample(n=min(len(features), CLUSTER_SAMPLE_ROWS), random_state=seed or 0)
    encoded = pd.get_dummies(sample, dtype=np.float64).fillna(0.0)
    matrix = encoded.to_numpy(dtype=np.float64)
    scale = matrix.std(axis=0)
    matrix = (matrix - matrix.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    k = num_clusters if num_clusters is not None else _choose_k(matrix, seed)
    k = max(1, min(k, len(sample)))
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed or 0).fit_predict(matrix)
    centres = []
    for cluster in range(k):
        members = sample[labels == cluster]
        centres.append({c: _centre(members[c]) for c in features.columns})
    logger.info("computed a SHAP baseline of %d cluster centres", k)
    return pd.DataFrame(centres, columns=features.columns).astype(features.dtypes.to_dict(), errors="ignore")


def _centre(column: pd.Series) -> Any:
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        mean = float(column.mean())
        return round(mean) if pd.api.types.is_integer_dtype(column.dtype) else mean
    return column.mode().iloc[0]
