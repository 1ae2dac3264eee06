"""Metrics the container computes itself (docs/algorithms/xgboost.md#metrics), passed to XGBoost as ``custom_metric``.

Every metric is computed from sufficient statistics (a confusion matrix for classification, weighted sums for
regression) so that, in distributed training, one allreduce over the workers gives exactly the metric of the whole
data set, as XGBoost's native metrics do.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
import xgboost as xgb
from xgboost import collective

from containers.xgboost.spec import CUSTOM_METRICS, MULTI_OBJECTIVES

logger = logging.getLogger(__name__)

REGRESSION_METRICS = ("mse", "rmse", "mae", "r2")
CustomMetric = Callable[[np.ndarray, xgb.DMatrix], list[tuple[str, float]]]


def split_metrics(metrics: Sequence[str]) -> tuple[list[str], list[str]]:
    """(native, custom): native ones go to ``eval_metric``, custom ones to ``custom_metric``."""
    native = [name for name in metrics if name not in CUSTOM_METRICS]
    custom = [name for name in metrics if name in CUSTOM_METRICS]
    return native, custom


def predicted_classes(preds: np.ndarray, objective: str) -> np.ndarray:
    """Class labels from the (transformed) predictions XGBoost hands to a custom metric."""
    if preds.ndim == 2 and preds.shape[1] > 1:
        return np.argmax(preds, axis=1)
    flat = preds.reshape(-1)
    if objective in ("binary:hinge", "multi:softmax"):
        return np.rint(flat).astype(np.int64)
    threshold = 0.0 if objective == "binary:logitraw" else 0.5
    return (flat > threshold).astype(np.int64)


def _allreduce(stats: np.ndarray) -> np.ndarray:
    if collective.is_distributed():
        return np.asarray(collective.allreduce(stats, collective.Op.SUM))
    return stats


def confusion_matrix(labels: np.ndarray, classes: np.ndarray, weights: np.ndarray, n_classes: int) -> np.ndarray:
    """Weighted (true x predicted) counts; labels and predictions outside [0, n_classes) are clipped."""
    truth = np.clip(np.rint(labels).astype(np.int64), 0, n_classes - 1)
    guess = np.clip(classes, 0, n_classes - 1)
    flat = np.bincount(truth * n_classes + guess, weights=weights, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _per_class(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, f1, present) per class; ``present`` marks classes seen as truth or prediction."""
    tp = np.diag(matrix)
    actual = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, actual)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return precision, recall, f1, (actual + predicted) > 0


def classification_metric(name: str, matrix: np.ndarray) -> float:
    """One classification metric from a confusion matrix (sklearn's definitions, zero_division=0)."""
    total = matrix.sum()
    accuracy = float(np.trace(matrix) / total) if total else 0.0
    if name in ("accuracy", "precision_micro", "recall_micro"):
        return accuracy
    precision, recall, f1, present = _per_class(matrix)
    if name == "balanced_accuracy":
        supported = matrix.sum(axis=1) > 0
        return float(recall[supported].mean()) if supported.any() else 0.0
    by_name = {"precision": precision, "recall": recall, "f1": f1}
    base, _, average = name.partition("_")
    values = by_name[base]
    binary = average == "binary" or (not average and base != "f1" and matrix.shape[0] == 2)
    if binary:
        return float(values[1])
    return float(values[present].mean()) if present.any() else 0.0


def regression_stats(labels: np.ndarray, preds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[sum w, sum w*e^2, sum w*|e|, sum w*y, sum w*y^2] for errors e = y - prediction."""
    errors = labels - preds
    return np.array(
        [
            weights.sum(),
            (weights * errors * errors).sum(),
            (weights * np.abs(errors)).sum(),
            (weights * labels).sum(),
            (weights * labels * labels).sum(),
        ],
        dtype=np.float64,
    )


def regression_metric(name: str, stats: np.ndarray) -> float:
    count, squared, absolute, total, total_sq = (float(value) for value in stats)
    if count <= 0:
        return math.nan
    if name == "mse":
        return squared / count
    if name == "rmse":
        return math.sqrt(squared / count)
    if name == "mae":
        return absolute / count
    variance = total_sq - total * total / count
    if variance <= 1e-12 * max(1.0, total_sq):
        return 1.0 if squared <= 0 else 0.0
    return 1.0 - squared / variance


def make_custom_metric(names: Sequence[str], objective: str, num_class: int | None) -> CustomMetric | None:
    """The ``custom_metric`` callable for ``names`` (None when there are none)."""
    if not names:
        return None
    n_classes = num_class if objective in MULTI_OBJECTIVES and num_class else 2

    def evaluate(preds: np.ndarray, dmatrix: xgb.DMatrix) -> list[tuple[str, float]]:
        labels = dmatrix.get_label().astype(np.float64)
        weights = dmatrix.get_weight().astype(np.float64)
        if weights.size != labels.size:
            weights = np.ones_like(labels)
        results: list[tuple[str, float]] = []
        classes = [name for name in names if name not in REGRESSION_METRICS]
        matrix = None
        if classes:
            predicted = predicted_classes(np.asarray(preds), objective)
            matrix = _allreduce(confusion_matrix(labels, predicted, weights, n_classes))
        stats = None
        if len(classes) < len(names):
            flat = np.asarray(preds, dtype=np.float64).reshape(labels.size, -1)[:, 0]
            stats = _allreduce(regression_stats(labels, flat, weights))
        for name in names:
            if name in REGRESSION_METRICS:
                assert stats is not None
                results.append((name, regression_metric(name, stats)))
            else:
                assert matrix is not None
                results.append((name, classification_metric(name, matrix)))
        return results

    return evaluate
