"""Every pre- and post-training metric on a 10-row table whose answers were computed by hand (see the comments)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from containers.clarify.bias.bias_report import metric_entry
from containers.clarify.bias.metric_base import BiasInputs, divide
from containers.clarify.bias.posttraining import POST_TRAINING
from containers.clarify.bias.pretraining import PRE_TRAINING

# rows 0-3 are the facet group d, rows 4-9 are a
SENSITIVE = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
LABEL = np.array([1, 0, 0, 0, 1, 1, 1, 0, 0, 1], dtype=bool)  # n_d(1) = 1, n_a(1) = 4
PREDICTED = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 1], dtype=bool)
GROUP = np.array(["x", "x", "y", "y", "x", "x", "x", "y", "y", "y"])
FEATURES = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0, 10.0, 11.0]})
INPUTS = BiasInputs(SENSITIVE, LABEL, PREDICTED, GROUP, FEATURES)

# P_a = (1/3, 2/3), P_d = (3/4, 1/4) over (False, True); P = (13/24, 11/24)
PRE_EXPECTED = {
    "CI": (6 - 4) / 10,
    "DPL": 4 / 6 - 1 / 4,
    "KL": (1 / 3) * math.log(4 / 9) + (2 / 3) * math.log(8 / 3),
    "JS": 0.5
    * (
        (1 / 3) * math.log(8 / 13)
        + (2 / 3) * math.log(16 / 11)
        + (3 / 4) * math.log(18 / 13)
        + (1 / 4) * math.log(6 / 11)
    ),
    "LP": math.sqrt(2) * 5 / 12,
    "TVD": 5 / 12,
    "KS": 5 / 12,
    # subgroup x: DD = 1/1 - 1/4 = 0.75; subgroup y: DD = 2/4 - 0/1 = 0.5; weights 5 and 5
    "CDDL": 0.625,
}

# a: TP 3, FN 1, FP 1, TN 1; d: TP 1, FP 1, FN 0, TN 2
POST_EXPECTED = {
    "DPPL": 4 / 6 - 2 / 4,
    "DI": (2 / 4) / (4 / 6),
    "DCA": 4 / 4 - 1 / 2,
    "DCR": 3 / 2 - 2 / 2,
    "RD": 3 / 4 - 1 / 1,
    "SD": 2 / 3 - 1 / 2,
    "DAR": 3 / 4 - 1 / 2,
    "DRR": 2 / 2 - 1 / 2,
    "AD": 4 / 6 - 3 / 4,
    "TE": 0 / 1 - 1 / 1,
    # subgroup x: DD = 0/1 - 2/4 = -0.5; subgroup y: DD = 2/3 - 0/2 = 2/3
    "CDDPL": (5 * -0.5 + 5 * (2 / 3)) / 10,
    # benefits b = ŷ - y + 1: d (1, 2, 1, 1), a (1, 0, 1, 2, 1, 1); mean 1.1; Σb² = 15
    "GE": (15 / 1.21 - 10) / 20,
    # a has 6 rows, so k = 1: the d rows' nearest a rows predict (1, 0, 1, 1); the model says (1, 1, 0, 0)
    "FT": (1 - 2) / 4,
}


@pytest.mark.parametrize("name", sorted(PRE_EXPECTED))
def test_pre_training_metric_matches_hand_computation(name: str) -> None:
    assert PRE_TRAINING[name].compute(INPUTS) == pytest.approx(PRE_EXPECTED[name], abs=1e-12)


@pytest.mark.parametrize("name", sorted(POST_EXPECTED))
def test_post_training_metric_matches_hand_computation(name: str) -> None:
    assert POST_TRAINING[name].compute(INPUTS) == pytest.approx(POST_EXPECTED[name], abs=1e-12)


def test_every_registered_metric_has_a_known_answer() -> None:
    assert set(PRE_TRAINING) == set(PRE_EXPECTED)
    assert set(POST_TRAINING) == set(POST_EXPECTED)


def test_binary_identities_tvd_ks_equal_abs_dpl_and_lp_is_root2_dpl() -> None:
    dpl = PRE_TRAINING["DPL"].compute(INPUTS)
    assert PRE_TRAINING["TVD"].compute(INPUTS) == pytest.approx(abs(dpl))
    assert PRE_TRAINING["LP"].compute(INPUTS) == pytest.approx(math.sqrt(2) * abs(dpl))


def test_zero_probability_outcomes_are_dropped_without_renormalising() -> None:
    # every d row is positive: only the True bucket is kept, P_a(True) = 0.5, P_d(True) = 1
    inputs = BiasInputs(np.array([1, 1, 0, 0], bool), np.array([1, 1, 1, 0], bool))
    assert PRE_TRAINING["KL"].compute(inputs) == pytest.approx(0.5 * math.log(0.5))
    assert PRE_TRAINING["KS"].compute(inputs) == pytest.approx(0.5)


def test_divide_follows_smclarify() -> None:
    assert divide(0, 0) == 0.0
    assert divide(1, 0) == math.inf
    assert divide(-1, 0) == -math.inf


def test_infinite_value_is_written_as_string_and_failure_as_null_with_error() -> None:
    # d: FN 1, FP 0 -> FN/FP = inf; a: FN 0, FP 1 -> 0
    inputs = BiasInputs(
        np.array([1, 1, 0, 0], bool), np.array([1, 0, 0, 1], bool), np.array([0, 0, 1, 1], bool), None, None
    )
    assert metric_entry(POST_TRAINING["TE"], inputs)["value"] == "Infinity"
    failed = metric_entry(PRE_TRAINING["CDDL"], inputs)
    assert failed["value"] is None and "Group variable" in failed["error"]


def test_dca_is_zero_when_both_sides_are_infinite() -> None:
    # nobody is predicted positive, some are positive in both groups: c_a = c_d = +inf
    inputs = BiasInputs(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool), np.zeros(4, bool))
    assert POST_TRAINING["DCA"].compute(inputs) == 0.0


def test_flip_test_rejects_non_numeric_features() -> None:
    inputs = BiasInputs(SENSITIVE, LABEL, PREDICTED, None, pd.DataFrame({"c": list("abcdefghij")}))
    entry = metric_entry(POST_TRAINING["FT"], inputs)
    assert entry["value"] is None and "non-numeric" in entry["error"]


def test_generalized_entropy_fails_when_every_prediction_is_a_false_negative() -> None:
    inputs = BiasInputs(np.array([1, 0], bool), np.array([1, 1], bool), np.array([0, 0], bool))
    assert "false negative" in metric_entry(POST_TRAINING["GE"], inputs)["error"]
