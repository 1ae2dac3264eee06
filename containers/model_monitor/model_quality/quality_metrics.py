"""Model quality (docs/reference/model-monitor-files.md#model-quality): metrics for regression, binary and multiclass
problems, their constraints and checks.

Each scalar metric is ``{"value": x, "standard_deviation": s}``; ``s`` is the standard deviation of the metric over
five seeded random 80% subsamples when there are at least 200 samples, else the string ``"NaN"``. Decisions: the
binary positive class is ``1`` (or the greatest label when the labels are not 0/1); the multiclass "best constant
classifier" predicts the most frequent ground-truth class; precision with no predicted positives is 0 (sklearn's
``zero_division=0``); curves are capped at ``CURVE_POINTS`` points.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
from scipy.stats import rankdata

logger = logging.getLogger(__name__)

__all__ = ["binary_metrics", "evaluate_constraints", "multiclass_metrics", "regression_metrics", "suggest_constraints"]

MIN_SAMPLES_FOR_STD = 200
SUBSAMPLES = 5
CURVE_POINTS = 1000
METRIC_KEYS = {
    "Regression": "regression",
    "BinaryClassification": "binary_classification",
    "MulticlassClassification": "multiclass_classification",
}
LOWER_IS_BETTER = {"mae", "mse", "rmse", "false_positive_rate", "false_negative_rate"}
Metric = Callable[[np.ndarray, np.ndarray], float]


def _fbeta(precision: float, recall: float, beta: float) -> float:
    denominator = beta * beta * precision + recall
    return 0.0 if denominator == 0 else (1 + beta * beta) * precision * recall / denominator


def _scalar(fn: Metric, a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict[str, Any]:
    value = float(fn(a, b))
    if a.size < MIN_SAMPLES_FOR_STD:
        return {"value": value, "standard_deviation": "NaN"}
    rng = np.random.default_rng(seed)
    size = int(a.size * 0.8)
    samples = []
    for _ in range(SUBSAMPLES):
        pick = rng.choice(a.size, size=size, replace=False)
        samples.append(float(fn(a[pick], b[pick])))
    return {"value": value, "standard_deviation": float(np.std(samples))}


# -- regression ------------------------------------------------------------------------------------------------------


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    residual = float(((y - p) ** 2).sum())
    return (1.0 - residual / total) if total > 0 else (1.0 if residual == 0 else 0.0)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    y, p = y_true.astype(np.float64), y_pred.astype(np.float64)
    return {
        "mae": _scalar(lambda a, b: float(np.abs(a - b).mean()), y, p),
        "mse": _scalar(lambda a, b: float(((a - b) ** 2).mean()), y, p),
        "rmse": _scalar(lambda a, b: math.sqrt(float(((a - b) ** 2).mean())), y, p),
        "r2": _scalar(_r2, y, p),
    }


# -- binary ----------------------------------------------------------------------------------------------------------


def _counts(y: np.ndarray, p: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(np.sum(y & p))
    fp = int(np.sum(~y & p))
    fn = int(np.sum(y & ~p))
    tn = int(np.sum(~y & ~p))
    return tp, fp, fn, tn


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _binary_fns() -> dict[str, Metric]:
    def precision(y: np.ndarray, p: np.ndarray) -> float:
        tp, fp, _, _ = _counts(y, p)
        return _ratio(tp, tp + fp)

    def recall(y: np.ndarray, p: np.ndarray) -> float:
        tp, _, fn, _ = _counts(y, p)
        return _ratio(tp, tp + fn)

    def tnr(y: np.ndarray, p: np.ndarray) -> float:
        _, fp, _, tn = _counts(y, p)
        return _ratio(tn, tn + fp)

    def fscore(beta: float) -> Metric:
        return lambda y, p: _fbeta(precision(y, p), recall(y, p), beta)

    return {
        "recall": recall,
        "precision": precision,
        "accuracy": lambda y, p: float(np.mean(y == p)),
        "true_positive_rate": recall,
        "true_negative_rate": tnr,
        "false_positive_rate": lambda y, p: 1.0 - tnr(y, p) if np.any(~y) else 0.0,
        "false_negative_rate": lambda y, p: 1.0 - recall(y, p) if np.any(y) else 0.0,
        "f0_5": fscore(0.5),
        "f1": fscore(1.0),
        "f2": fscore(2.0),
    }


def auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged (equals sklearn's ``roc_auc_score``)."""
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _curves(y: np.ndarray, scores: np.ndarray) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    order = np.argsort(-scores, kind="mergesort")
    ys, ss = y[order], scores[order]
    last = np.r_[np.nonzero(np.diff(ss))[0], ys.size - 1]
    tps = np.cumsum(ys)[last].astype(np.float64)
    fps = (last + 1 - tps).astype(np.float64)
    positives, negatives = max(tps[-1], 1.0), max(fps[-1], 1.0)
    step = max(1, math.ceil(tps.size / CURVE_POINTS))
    tps, fps = tps[::step], fps[::step]
    roc = {"false_positive_rates": [0.0, *(fps / negatives)], "true_positive_rates": [0.0, *(tps / positives)]}
    pr = {"precisions": list(tps / np.maximum(tps + fps, 1.0)), "recalls": list(tps / positives)}
    return roc, pr


def _label_text(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, dict[str, int]]:
    """``{actual: {predicted: count}}`` over the union of labels (outer key = ground truth)."""
    labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()), key=lambda v: (str(type(v)), v))
    matrix = {_label_text(a): {_label_text(p): 0 for p in labels} for a in labels}
    for actual, predicted in zip(y_true.tolist(), y_pred.tolist(), strict=True):
        matrix[_label_text(actual)][_label_text(predicted)] += 1
    return matrix


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray | None) -> dict[str, Any]:
    """``y_true``/``y_pred`` are 0/1 (or any two labels); ``scores`` the positive-class probabilities if known."""
    labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    positive = 1 if 1 in labels else labels[-1]
    y, p = y_true == positive, y_pred == positive
    out: dict[str, Any] = {"confusion_matrix": confusion_matrix(y_true, y_pred)}
    constant = np.ones_like(p)
    fns = _binary_fns()
    for name, fn in fns.items():
        out[name] = _scalar(fn, y, p)
    for name in ("recall", "precision", "accuracy", "f0_5", "f1", "f2"):
        out[f"{name}_best_constant_classifier"] = _scalar(fns[name], y, constant)
    score = scores.astype(np.float64) if scores is not None else p.astype(np.float64)
    roc, pr = _curves(y, score)
    out["receiver_operating_characteristic_curve"] = roc
    out["precision_recall_curve"] = pr
    out["auc"] = _scalar(auc, y, score)
    return out


# -- multiclass ------------------------------------------------------------------------------------------------------


def _weighted(y: np.ndarray, p: np.ndarray, beta: float | None, which: str) -> float:
    total = 0.0
    for label in np.unique(y):
        truth, guess = y == label, p == label
        tp = float(np.sum(truth & guess))
        precision = _ratio(tp, float(guess.sum()))
        recall = _ratio(tp, float(truth.sum()))
        value = (
            precision if which == "precision" else recall if which == "recall" else _fbeta(precision, recall, beta or 1)
        )
        total += value * float(truth.sum())
    return total / y.size if y.size else 0.0


def multiclass_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    y, p = y_true.astype(str), y_pred.astype(str)
    values, counts = np.unique(y, return_counts=True)
    constant = np.full(y.shape, values[np.argmax(counts)]) if y.size else y
    fns: dict[str, Metric] = {
        "accuracy": lambda a, b: float(np.mean(a == b)),
        "weighted_recall": lambda a, b: _weighted(a, b, None, "recall"),
        "weighted_precision": lambda a, b: _weighted(a, b, None, "precision"),
        "weighted_f0_5": lambda a, b: _weighted(a, b, 0.5, "f"),
        "weighted_f1": lambda a, b: _weighted(a, b, 1.0, "f"),
        "weighted_f2": lambda a, b: _weighted(a, b, 2.0, "f"),
    }
    out: dict[str, Any] = {"confusion_matrix": confusion_matrix(y_true, y_pred)}
    for name, fn in fns.items():
        out[name] = _scalar(fn, y, p)
    for name, fn in fns.items():
        out[f"{name}_best_constant_classifier"] = _scalar(fn, y, constant)
    return out


# -- statistics.json, constraints.json, violations -----------------------------------------------------------------


def statistics_document(problem_type: str, item_count: int, metrics: dict[str, Any], when: datetime) -> dict[str, Any]:
    return {
        "version": 0.0,
        "dataset": {"item_count": item_count, "evaluation_time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
        f"{METRIC_KEYS[problem_type]}_metrics": metrics,
    }


def suggest_constraints(problem_type: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """Threshold = the baseline value; errors use GreaterThanThreshold, goodness metrics LessThanThreshold."""
    entries = {}
    for name, entry in metrics.items():
        if "best_constant" in name or not isinstance(entry, dict) or "value" not in entry:
            continue
        value = entry["value"]
        if not isinstance(value, float) or math.isnan(value):
            continue
        operator = "GreaterThanThreshold" if name in LOWER_IS_BETTER else "LessThanThreshold"
        entries[name] = {"threshold": value, "comparison_operator": operator}
    return {"version": 0.0, f"{METRIC_KEYS[problem_type]}_constraints": entries}


def evaluate_constraints(constraints: dict[str, Any], metrics: dict[str, Any]) -> list[dict[str, str]]:
    """Violations (``value <op> threshold``) for every constraint whose metric was computed."""
    key = next((k for k in constraints if k.endswith("_constraints")), None)
    violations = []
    for name, rule in (constraints.get(key) or {}).items() if key else []:
        entry = metrics.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), float):
            continue
        value, threshold = entry["value"], float(rule["threshold"])
        operator = str(rule.get("comparison_operator", "LessThanThreshold"))
        broken = value > threshold if operator == "GreaterThanThreshold" else value < threshold
        if broken and not math.isnan(value):
            spread = entry.get("standard_deviation")
            description = f"Metric {name} with {value} +/- {spread} was {operator} '{threshold}'"
            violations.append({"metric_name": name, "constraint_check_type": operator, "description": description})
    return violations
