"""Kernel SHAP: exact answers on a linear model, efficiency on a non-linear one, coalition design, aggregation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from containers.clarify.kernel_shap import coalitions, explain, global_values
from tests.unit.clarify.conftest import FunctionModel

COEF = np.array([2.0, -1.0, 0.5, 3.0, 0.0, 1.5, -2.5, 0.25, 1.0])


def _frames(rows: int = 60, baseline_rows: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    names = [f"f{i}" for i in range(len(COEF))]
    return (
        pd.DataFrame(rng.normal(size=(rows, len(COEF))), columns=names),
        pd.DataFrame(rng.normal(size=(baseline_rows, len(COEF))), columns=names),
    )


@pytest.mark.parametrize("num_samples", [40, 200, 600])
def test_linear_model_shap_values_are_coefficients_times_distance_to_baseline_mean(num_samples: int) -> None:
    rows, baseline = _frames()
    model = FunctionModel(lambda x: x @ COEF + 0.7)
    result = explain(model, rows, baseline, list(rows.columns), num_samples=num_samples, seed=1)
    expected = COEF * (rows.to_numpy() - baseline.to_numpy().mean(axis=0))
    np.testing.assert_allclose(result.local[:, :, 0], expected, atol=1e-9)
    assert result.expected_value[0] == pytest.approx(float((baseline.to_numpy() @ COEF + 0.7).mean()))
    assert result.outputs == ["label0"]


def test_values_sum_to_prediction_minus_expected_value() -> None:
    rows, baseline = _frames()

    def model_fn(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(x @ COEF / 3 + x[:, 0] * x[:, 1])))

    result = explain(FunctionModel(model_fn), rows, baseline, list(rows.columns), num_samples=100, seed=7)
    np.testing.assert_allclose(
        result.local[:, :, 0].sum(axis=1), model_fn(rows.to_numpy()) - result.expected_value[0], atol=1e-9
    )


def test_use_logit_explains_log_odds() -> None:
    rows, baseline = _frames(rows=10, baseline_rows=1)
    model = FunctionModel(lambda x: 1 / (1 + np.exp(-(x @ COEF))))
    result = explain(model, rows, baseline, list(rows.columns), num_samples=600, seed=0, use_logit=True)
    np.testing.assert_allclose(result.local[:, :, 0], COEF * (rows.to_numpy() - baseline.to_numpy()[0]), atol=1e-6)


def test_features_to_explain_keeps_the_other_features_at_the_rows_values() -> None:
    rows, baseline = _frames()
    result = explain(FunctionModel(lambda x: x @ COEF), rows, baseline, ["f0", "f3"], num_samples=50, seed=0)
    expected = COEF[[0, 3]] * (rows[["f0", "f3"]].to_numpy() - baseline[["f0", "f3"]].to_numpy().mean(axis=0))
    np.testing.assert_allclose(result.local[:, :, 0], expected, atol=1e-9)


def test_coalition_design_is_exhaustive_when_affordable_and_seeded_otherwise() -> None:
    masks, weights = coalitions(4, 100, None)
    assert len(masks) == 2**4 - 2 and weights.min() > 0
    size_one = masks.sum(axis=1) == 1
    assert weights[size_one][0] == pytest.approx(3 / (math.comb(4, 1) * 1 * 3))
    first, _ = coalitions(12, 300, 5)
    second, _ = coalitions(12, 300, 5)
    assert np.array_equal(first, second) and len(first) <= 300


def test_global_aggregations() -> None:
    local = np.array([[[1.0]], [[-3.0]], [[2.0]]])
    assert global_values(local, "mean_abs")[0, 0] == pytest.approx(2.0)
    assert global_values(local, "median")[0, 0] == pytest.approx(1.0)
    assert global_values(local, "mean_sq")[0, 0] == pytest.approx(14 / 3)
