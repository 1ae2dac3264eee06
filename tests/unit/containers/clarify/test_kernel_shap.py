"""Kernel SHAP: exact answers on a linear model, efficiency on a non-linear one, coalition design, aggregation,
and features that do not vary from the baseline (exactly 0, outside the regression), checked against shap 0.51."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from containers.clarify.explainability import kernel_shap
from containers.clarify.explainability.kernel_shap import coalitions, explain, global_values, varying
from containers.clarify.model_access.predictor_codec import ModelOutput
from tests.unit.containers.clarify.conftest import FunctionModel

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


def _pinned_frames() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """12 features, 3 baseline rows constant in f1 and f5; rows pinned to those values (and to f7 of every row)."""
    rng = np.random.default_rng(11)
    names = [f"f{i}" for i in range(12)]
    baseline = pd.DataFrame(rng.normal(size=(3, 12)), columns=names)
    baseline[["f1", "f5"]] = [0.5, -1.25]
    rows = pd.DataFrame(rng.normal(size=(40, 12)), columns=names)
    rows.loc[:19, "f1"] = 0.5
    rows.loc[10:29, "f5"] = -1.25
    pinned = np.zeros(rows.shape, dtype=bool)
    pinned[:20, 1] = True
    pinned[10:30, 5] = True
    return rows, baseline, pinned


WIDE = np.array([2.0, -1.0, 0.5, 3.0, 0.0, 1.5, -2.5, 0.25, 1.0, -0.75, 1.25, 0.6])


def test_linear_model_known_answer_with_features_pinned_to_the_baseline() -> None:
    """Exact SHAP of a linear model is w_i (x_i − E[b_i]); a pinned feature gets exactly 0; shap agrees."""
    import shap  # a dev dependency (shap==0.51.0)

    rows, baseline, pinned = _pinned_frames()
    model = FunctionModel(lambda x: x @ WIDE - 0.3)
    result = explain(model, rows, baseline, list(rows.columns), num_samples=40, seed=2)
    expected = WIDE * (rows.to_numpy() - baseline.to_numpy().mean(axis=0))
    local = result.local[:, :, 0]
    np.testing.assert_allclose(local, expected, atol=1e-9)
    assert np.all(local[pinned] == 0.0)
    # shap samples its coalitions from numpy's global generator; with 40 samples about 1 draw in 20 leaves a row's
    # design rank-deficient and shap itself answers wrongly there, so its draw is pinned to one it solves exactly.
    state = np.random.get_state()
    np.random.seed(0)
    try:
        explainer = shap.KernelExplainer(lambda x: x @ WIDE - 0.3, baseline.to_numpy())
        reference = explainer.shap_values(rows.to_numpy(), nsamples=40, l1_reg=False, silent=True)
    finally:
        np.random.set_state(state)
    np.testing.assert_allclose(local, reference, atol=1e-8)
    assert np.all(np.asarray(reference)[pinned] == 0.0)


def _bumpy(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ WIDE[: x.shape[1]] / 3 + x[:, 0] * x[:, 1] - np.sin(x[:, 2] * x[:, 5]))))


def test_sampled_coalitions_give_pinned_features_exactly_zero_and_keep_efficiency() -> None:
    rows, baseline, pinned = _pinned_frames()
    result = explain(FunctionModel(_bumpy), rows, baseline, list(rows.columns), num_samples=32, seed=0)
    local = result.local[:, :, 0]
    assert np.all(local[pinned] == 0.0)
    assert np.all(np.abs(local[~pinned]) > 0)
    np.testing.assert_allclose(local.sum(axis=1), _bumpy(rows.to_numpy()) - result.expected_value[0], atol=1e-12)


def test_exhaustive_coalitions_match_shap_on_a_non_linear_model_with_pinned_features() -> None:
    """With every coalition both compute exact Shapley values: equal to rounding, zeros where a feature is pinned."""
    import shap

    rows, baseline, pinned = _pinned_frames()
    rows, baseline, pinned = rows.iloc[:, :7], baseline.iloc[:, :7], pinned[:, :7]
    result = explain(FunctionModel(_bumpy), rows, baseline, list(rows.columns), seed=0)
    reference = shap.KernelExplainer(_bumpy, baseline.to_numpy()).shap_values(rows.to_numpy(), silent=True)
    np.testing.assert_allclose(result.local[:, :, 0], reference, atol=1e-9)
    assert np.all(result.local[:, :, 0][pinned] == 0.0)


def test_rows_equal_to_the_baseline_are_zero_without_calling_the_model_and_one_varying_feature_takes_all() -> None:
    rows, baseline = _frames(rows=4, baseline_rows=1)
    rows.iloc[0] = baseline.iloc[0]  # varies in nothing
    rows.iloc[1] = baseline.iloc[0]
    rows.iloc[1, 3] = 9.0  # varies in f3 only
    model = FunctionModel(_bumpy)
    result = explain(model, rows, baseline, list(rows.columns), num_samples=20, seed=0)
    local = result.local[:, :, 0]
    assert np.all(local[0] == 0.0)
    assert np.all(np.delete(local[1], 3) == 0.0)
    assert local[1, 3] == pytest.approx(float(_bumpy(rows.to_numpy()[1:2])[0] - result.expected_value[0]), abs=1e-12)
    assert model.rows == 1 + 2 * 1 + 2 * (20 + 2)  # baseline; f3 alone: v(0), v(1); two full rows: 20 coalitions


class _CallSizes(FunctionModel):
    def __init__(self) -> None:
        super().__init__(_bumpy)
        self.sizes: list[int] = []

    def predict(self, frame: pd.DataFrame) -> ModelOutput:
        self.sizes.append(len(frame))
        return super().predict(frame)


def test_predictions_are_packed_across_groups_within_the_call_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    rows, baseline, _ = _pinned_frames()  # four varying patterns
    model = _CallSizes()
    packed = explain(model, rows, baseline, list(rows.columns), num_samples=32, seed=0)
    assert len(model.sizes) == 2  # the baseline, then every group in one call
    monkeypatch.setattr(kernel_shap, "ROWS_PER_CALL", 1000)
    model = _CallSizes()
    split = explain(model, rows, baseline, list(rows.columns), num_samples=32, seed=0)
    assert len(model.sizes) > 5 and max(model.sizes) <= 1000
    np.testing.assert_allclose(split.local, packed.local, atol=1e-12)


def test_batches_are_cut_to_even_sizes_and_overlap_to_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    rows, baseline = _frames(rows=60, baseline_rows=4)  # one group: 60 rows x (40 + 2) coalitions x 4 = 10,080 rows
    model = _CallSizes()
    whole = explain(model, rows, baseline, list(rows.columns), num_samples=40, seed=0)
    assert model.sizes[1:] == [10_080]
    monkeypatch.setattr(kernel_shap, "ROWS_PER_CALL", 4_000)  # 3 calls of 20 rows (not 4,000 + 4,000 + 2,080)
    model = _CallSizes()
    split = explain(model, rows, baseline, list(rows.columns), num_samples=40, seed=0)
    assert model.sizes[1:] == [3_360, 3_360, 3_360]
    np.testing.assert_allclose(split.local, whole.local, atol=1e-12)


def test_varying_treats_missing_as_equal_and_compares_categories() -> None:
    rows = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, np.nan]])
    baseline = np.array([[1.0, np.nan, 3.0], [1.0, np.nan, 4.0]])
    assert varying(rows, baseline).tolist() == [[False, False, True], [False, True, True]]
    categories = np.array([["a", None], ["b", "x"]], dtype=object)
    assert varying(categories, np.array([["a", None]], dtype=object)).tolist() == [[False, False], [True, True]]


def test_global_aggregations() -> None:
    local = np.array([[[1.0]], [[-3.0]], [[2.0]]])
    assert global_values(local, "mean_abs")[0, 0] == pytest.approx(2.0)
    assert global_values(local, "median")[0, 0] == pytest.approx(1.0)
    assert global_values(local, "mean_sq")[0, 0] == pytest.approx(14 / 3)


class _AdditiveMixedModel:
    """score = [s == "b"] + x + 2·[flag]: reads the frame's values as an endpoint's decoder would see them."""

    def predict(self, frame: pd.DataFrame) -> ModelOutput:
        values = frame.astype(object)
        assert {type(v) for v in values["s"]} <= {str}, "string cells reach the model as strings"
        scores = (values["s"] == "b").to_numpy(float) + values["x"].to_numpy(float) + 2 * values["flag"].to_numpy(float)
        return ModelOutput(scores.reshape(-1, 1), None)


def test_mixed_type_columns_reach_the_model_as_their_values() -> None:
    rows = pd.DataFrame({"s": ["a", "b", "b"], "x": [1.5, -2.0, 0.25], "flag": [True, False, True]})
    baseline = pd.DataFrame({"s": ["a", "b"], "x": [0.0, 1.0], "flag": [False, False]})
    result = explain(_AdditiveMixedModel(), rows, baseline, list(rows.columns), num_samples=100, seed=0)
    expected = np.column_stack(
        [(rows["s"] == "b") - 0.5, rows["x"] - 0.5, 2 * rows["flag"].astype(float)]
    )  # additive: each feature's own term minus its baseline mean
    np.testing.assert_allclose(result.local[:, :, 0], expected, atol=1e-12)
