from __future__ import annotations

import re

import pytest

from containers.toolkit.errors import UserError
from containers.toolkit.metrics import Direction, MetricsWriter, escape_control_chars
from containers.xgboost import spec
from containers.xgboost.train import xgb_params


def test_valid_hyperparameters_are_typed_and_aliases_resolved():
    values = spec.validate(
        {
            "num_round": "10",
            "learning_rate": "0.2",
            "max_depth": '"4"',
            "objective": "binary:logistic",
            "eval_metric": "auc,error@0.3",
            "save_model_on_termination": "True",
            "monotone_constraints": "(1,-1,0)",
            "single_precision_histogram": "true",
            "sagemaker_program": "ignored",
        }
    )
    assert values["num_round"] == 10
    assert values["eta"] == 0.2
    assert values["max_depth"] == 4
    assert values["eval_metric"] == ["auc", "error@0.3"]
    assert values["save_model_on_termination"] == "true"
    assert values["monotone_constraints"] == (1, -1, 0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"num_round": "5", "foo": "1"}, "Extraneous hyperparameter found: foo"),
        ({"eta": "0.1"}, "Missing required hyperparameter: num_round"),
        ({"num_round": "0"}, "Hyperparameter num_round: value 0 not in range [1, inf)"),
        ({"num_round": "5", "eta": "1.5"}, "Hyperparameter eta: value 1.5 not in range [0, 1]"),
        ({"num_round": "5", "subsample": "0"}, "Hyperparameter subsample: value 0 not in range (0, 1]"),
        ({"num_round": "x"}, "Hyperparameter num_round: could not parse value"),
        ({"num_round": "5", "objective": "multi:softmax"}, "num_class"),
        ({"num_round": "5", "num_class": "3"}, "num_class"),
        ({"num_round": "5", "objective": "reg:squarederror", "eval_metric": "auc"}, "auc"),
        ({"num_round": "5", "objective": "binary:logistic", "eval_metric": "bogus"}, "eval_metric"),
        ({"num_round": "5", "tree_method": "approx", "monotone_constraints": "(1,0)"}, "monotone_constraints"),
        ({"num_round": "5", "booster": "gblinear", "updater": "shotgun,coord_descent"}, "gblinear"),
        ({"num_round": "5", "_tuning_objective_metric": "validation:nope"}, "_tuning_objective_metric"),
        ({"num_round": "5", "tree_method": "gpu_hist"}, "gpu_hist"),
    ],
)
def test_invalid_hyperparameters_name_the_problem(raw, message):
    with pytest.raises(UserError, match=re.escape(message)):
        spec.validate(raw)


def test_num_class_with_a_multi_objective_is_accepted():
    values = spec.validate({"num_round": "3", "objective": "multi:softprob", "num_class": "3"})
    assert values["num_class"] == 3


def test_metric_list_adds_the_tuning_metric_and_sorts():
    values = spec.validate(
        {
            "num_round": "3",
            "objective": "binary:logistic",
            "eval_metric": "logloss,error",
            "_tuning_objective_metric": "validation:auc",
        }
    )
    assert spec.metric_names(values) == ["auc", "error", "logloss"]


def test_container_only_and_removed_keys_do_not_reach_xgboost():
    values = spec.validate(
        {
            "num_round": "3",
            "objective": "binary:logistic",
            "eval_metric": "auc,accuracy",
            "csv_weights": "1",
            "single_precision_histogram": "true",
            "interaction_constraints": "[[0, 1], [2]]",
            "updater": "grow_colmaker,prune",
        }
    )
    params = xgb_params(values)
    assert params == {
        "objective": "binary:logistic",
        "eval_metric": ["auc"],
        "interaction_constraints": "[[0,1],[2]]",
        "updater": "grow_colmaker,prune",
    }


def test_every_metric_has_a_tunable_validation_and_informational_train_definition():
    names = {m.name: m for m in spec.METRICS}
    assert len(names) == 2 * len(spec.METRIC_NAMES)
    auc = names["validation:auc"]
    assert auc.regex == r".*\[[0-9]+\].*#011validation-auc:(\S+)"
    assert auc.direction is Direction.MAXIMIZE and auc.tunable
    assert names["validation:rmse"].direction is Direction.MINIMIZE
    assert not names["train:auc"].tunable


def test_round_line_matches_the_metric_regex_only_after_escaping(capsys):
    MetricsWriter("algo-1").rounds(3, [("train", "auc", 0.912341), ("validation", "auc", 0.887654)])
    line = capsys.readouterr().out.splitlines()[-1]
    assert line == "[3]\ttrain-auc:0.91234\tvalidation-auc:0.88765"
    regex = spec.metric_regex("validation", "auc")
    assert re.match(regex, escape_control_chars(line)).group(1) == "0.88765"
    assert re.match(regex, line) is None
