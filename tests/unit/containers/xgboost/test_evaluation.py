from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb
from sklearn import metrics as skm

from containers.xgboost.evaluation import (
    classification_metric,
    confusion_matrix,
    make_custom_metric,
    predicted_classes,
    regression_metric,
    regression_stats,
)

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("accuracy", lambda y, p: skm.accuracy_score(y, p)),
        ("balanced_accuracy", lambda y, p: skm.balanced_accuracy_score(y, p)),
        ("f1", lambda y, p: skm.f1_score(y, p, average="macro")),
        ("f1_macro", lambda y, p: skm.f1_score(y, p, average="macro")),
        ("precision_macro", lambda y, p: skm.precision_score(y, p, average="macro", zero_division=0)),
        ("precision_micro", lambda y, p: skm.precision_score(y, p, average="micro")),
        ("recall_macro", lambda y, p: skm.recall_score(y, p, average="macro")),
        ("recall_micro", lambda y, p: skm.recall_score(y, p, average="micro")),
    ],
)
def test_classification_metrics_match_sklearn(n_classes, name, reference):
    truth = RNG.integers(0, n_classes, size=300)
    guess = np.where(RNG.random(300) < 0.7, truth, RNG.integers(0, n_classes, size=300))
    matrix = confusion_matrix(truth.astype(float), guess, np.ones(300), n_classes)
    assert classification_metric(name, matrix) == pytest.approx(reference(truth, guess))


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1_binary", skm.f1_score),
    ],
)
def test_binary_metrics_use_the_positive_class(name, reference):
    truth = np.array([0, 1, 1, 0, 1, 1, 0, 0])
    guess = np.array([0, 1, 0, 1, 1, 1, 0, 0])
    matrix = confusion_matrix(truth.astype(float), guess, np.ones(8), 2)
    assert classification_metric(name, matrix) == pytest.approx(reference(truth, guess))


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("mse", skm.mean_squared_error),
        ("rmse", lambda y, p: np.sqrt(skm.mean_squared_error(y, p))),
        ("mae", skm.mean_absolute_error),
        ("r2", skm.r2_score),
    ],
)
def test_regression_metrics_match_sklearn(name, reference):
    truth = RNG.normal(size=100)
    pred = truth + RNG.normal(scale=0.4, size=100)
    stats = regression_stats(truth, pred, np.ones(100))
    assert regression_metric(name, stats) == pytest.approx(reference(truth, pred))


def test_classes_from_predictions_by_objective():
    assert predicted_classes(np.array([0.2, 0.7]), "binary:logistic").tolist() == [0, 1]
    assert predicted_classes(np.array([-0.2, 0.1]), "binary:logitraw").tolist() == [0, 1]
    assert predicted_classes(np.array([2.0, 0.0]), "multi:softmax").tolist() == [2, 0]
    assert predicted_classes(np.array([[0.1, 0.8, 0.1], [0.6, 0.3, 0.1]]), "multi:softprob").tolist() == [1, 0]


def test_custom_metric_reports_every_name_in_order():
    labels = np.array([0.0, 1.0, 1.0, 0.0])
    dmatrix = xgb.DMatrix(np.zeros((4, 1)), label=labels)
    evaluate = make_custom_metric(["accuracy", "mse"], "binary:logistic", None)
    assert evaluate is not None
    result = evaluate(np.array([0.1, 0.9, 0.4, 0.2]), dmatrix)
    assert [name for name, _ in result] == ["accuracy", "mse"]
    assert result[0][1] == pytest.approx(0.75)
    assert result[1][1] == pytest.approx(np.mean((labels - [0.1, 0.9, 0.4, 0.2]) ** 2))
