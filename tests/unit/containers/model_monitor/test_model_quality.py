from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from containers.model_monitor.model_quality import quality_metrics as mq


def test_regression_vs_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    p = y + rng.normal(scale=0.3, size=300)
    out = mq.regression_metrics(y, p)
    assert out["mae"]["value"] == pytest.approx(sk.mean_absolute_error(y, p))
    assert out["mse"]["value"] == pytest.approx(sk.mean_squared_error(y, p))
    assert out["rmse"]["value"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, p)))
    assert out["r2"]["value"] == pytest.approx(sk.r2_score(y, p))
    assert isinstance(out["mae"]["standard_deviation"], float)  # >= 200 samples


def test_binary_vs_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=150).astype(float)
    scores = np.clip(y * 0.4 + rng.uniform(size=150) * 0.6, 0, 1)
    p = (scores > 0.5).astype(float)
    out = mq.binary_metrics(y, p, scores)
    assert out["precision"]["value"] == pytest.approx(sk.precision_score(y, p))
    assert out["recall"]["value"] == pytest.approx(sk.recall_score(y, p))
    assert out["accuracy"]["value"] == pytest.approx(sk.accuracy_score(y, p))
    for beta, key in ((0.5, "f0_5"), (1.0, "f1"), (2.0, "f2")):
        assert out[key]["value"] == pytest.approx(sk.fbeta_score(y, p, beta=beta))
    assert out["auc"]["value"] == pytest.approx(sk.roc_auc_score(y, scores))
    tn, fp, fn, tp = sk.confusion_matrix(y, p).ravel()
    assert out["true_negative_rate"]["value"] == pytest.approx(tn / (tn + fp))
    assert out["false_positive_rate"]["value"] == pytest.approx(fp / (tn + fp))
    assert out["false_negative_rate"]["value"] == pytest.approx(fn / (fn + tp))
    assert out["confusion_matrix"] == {"0": {"0": int(tn), "1": int(fp)}, "1": {"0": int(fn), "1": int(tp)}}
    assert out["recall"]["standard_deviation"] == "NaN"  # < 200 samples
    roc = out["receiver_operating_characteristic_curve"]
    assert roc["false_positive_rates"][0] == 0.0 and roc["true_positive_rates"][-1] == pytest.approx(1.0)


def test_binary_docs_example_best_constant_classifier() -> None:
    """Prevalence 0.25: the constant positive classifier has precision 0.25, recall 1, F1 0.4, F2 0.625
    (docs/reference/model-monitor-files.md#model-quality)."""
    y = np.array([1, 0, 0, 0] * 5, dtype=float)
    p = np.array([1, 1, 1, 0] * 5, dtype=float)
    out = mq.binary_metrics(y, p, None)
    assert out["precision_best_constant_classifier"]["value"] == pytest.approx(0.25)
    assert out["recall_best_constant_classifier"]["value"] == pytest.approx(1.0)
    assert out["accuracy_best_constant_classifier"]["value"] == pytest.approx(0.25)
    assert out["f1_best_constant_classifier"]["value"] == pytest.approx(0.4)
    assert out["f0_5_best_constant_classifier"]["value"] == pytest.approx(0.2941, abs=1e-4)
    assert out["f2_best_constant_classifier"]["value"] == pytest.approx(0.625)
    assert out["recall"]["value"] == 1.0 and out["precision"]["value"] == pytest.approx(1 / 3)


def test_multiclass_vs_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, size=250).astype(float)
    p = np.where(rng.uniform(size=250) < 0.7, y, rng.integers(0, 4, size=250)).astype(float)
    out = mq.multiclass_metrics(y, p)
    assert out["accuracy"]["value"] == pytest.approx(sk.accuracy_score(y, p))
    assert out["weighted_precision"]["value"] == pytest.approx(sk.precision_score(y, p, average="weighted"))
    assert out["weighted_recall"]["value"] == pytest.approx(sk.recall_score(y, p, average="weighted"))
    assert out["weighted_f1"]["value"] == pytest.approx(sk.f1_score(y, p, average="weighted"))
    assert out["weighted_f2"]["value"] == pytest.approx(sk.fbeta_score(y, p, beta=2, average="weighted"))
    assert out["weighted_f0_5"]["value"] == pytest.approx(sk.fbeta_score(y, p, beta=0.5, average="weighted"))
    constant = np.full_like(y, np.bincount(y.astype(int)).argmax())
    assert out["accuracy_best_constant_classifier"]["value"] == pytest.approx(sk.accuracy_score(y, constant))
    assert sum(sum(row.values()) for row in out["confusion_matrix"].values()) == 250


def test_constraints_and_violations() -> None:
    metrics = mq.regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.1, 2.2, 2.7]))
    constraints = mq.suggest_constraints("Regression", metrics)
    rules = constraints["regression_constraints"]
    assert rules["mse"]["comparison_operator"] == "GreaterThanThreshold"
    assert rules["r2"]["comparison_operator"] == "LessThanThreshold"
    assert rules["mae"]["threshold"] == metrics["mae"]["value"]
    assert mq.evaluate_constraints(constraints, metrics) == []
    worse = mq.regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([2.0, 1.0, 4.0]))
    found = {v["metric_name"]: v for v in mq.evaluate_constraints(constraints, worse)}
    assert set(found) == {"mae", "mse", "rmse", "r2"}
    assert found["mse"]["constraint_check_type"] == "GreaterThanThreshold"
    assert found["mse"]["description"].startswith("Metric mse with 1.0 +/- NaN was GreaterThanThreshold '")
