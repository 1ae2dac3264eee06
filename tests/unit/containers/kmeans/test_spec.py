from __future__ import annotations

import pytest

from containers.kmeans.spec import HYPERPARAMETERS, METRICS, parse_hyperparameters
from containers.toolkit.errors import UserError


def test_defaults_and_auto_values():
    config = parse_hyperparameters({"k": "3", "feature_dim": "5"})
    assert config.mini_batch_size == 5000
    assert config.epochs == 1
    assert config.init_method == "random"
    assert config.extra_center_factor == 10
    assert config.working_centers == 30
    assert config.local_lloyd_max_iter == 300
    assert config.local_lloyd_tol == 0.0001
    assert config.local_lloyd_init_method == "kmeans++"
    assert config.local_lloyd_num_trials == 10
    assert config.half_life_time_size == 0
    assert config.eval_metrics == ("msd",)


def test_sdk_hyperparameters_are_accepted():
    # exactly what KMeans(...).hyperparameters() gives in sagemaker 2.257.7
    # (docs/reference/container-contract.md#hyperparametersjson), plus tuning's key
    raw = {
        "force_dense": "True",
        "k": "3",
        "init_method": "kmeans++",
        "extra_center_factor": "4",
        "eval_metrics": '["msd", "ssd"]',
        "feature_dim": "5",
        "mini_batch_size": "100",
        "_tuning_objective_metric": "test:msd",
        "_kvstore": "dist_async",
        "_num_gpus": "auto",
    }
    config = parse_hyperparameters(raw)
    assert (config.k, config.extra_center_factor, config.eval_metrics) == (3, 4, ("msd", "ssd"))
    assert config.init_method == "kmeans++"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("k", "0", "Hyperparameter k: value 0 not in range"),
        ("feature_dim", "abc", "Hyperparameter feature_dim: could not parse"),
        ("init_method", "forgy", "Hyperparameter init_method: value forgy not in range"),
        ("extra_center_factor", "0", "Hyperparameter extra_center_factor: value 0 not in range"),
        ("local_lloyd_tol", "1.5", "Hyperparameter local_lloyd_tol: value 1.5 not in range"),
        ("local_lloyd_num_trials", "many", "Hyperparameter local_lloyd_num_trials"),
        ("half_life_time_size", "-1", "Hyperparameter half_life_time_size: value -1 not in range"),
        ("eval_metrics", '["rmse"]', "Hyperparameter eval_metrics"),
        ("colour", "blue", "Extraneous hyperparameter found: colour"),
    ],
)
def test_invalid_values_are_user_errors(key, value, message):
    raw = {"k": "3", "feature_dim": "5", key: value}
    with pytest.raises(UserError, match=message):
        parse_hyperparameters(raw)


def test_required_parameters():
    with pytest.raises(UserError, match="Missing required hyperparameter: k"):
        parse_hyperparameters({"feature_dim": "5"})


def test_metric_regexes_match_the_documented_tuning_regex():
    by_name = {metric.name: metric for metric in METRICS}
    assert by_name["test:msd"].regex == r"#quality_metric: host=\S+, test msd <loss>=(\S+)"
    assert by_name["test:msd"].match("#quality_metric: host=algo-1, test msd <loss>=0.25") == 0.25
    assert by_name["test:ssd"].match("[x] #quality_metric: host=algo-1, test ssd <loss>=12.5") == 12.5
    assert by_name["train:msd"].tunable is False
    assert {m.name for m in METRICS if m.tunable} == {"test:msd", "test:ssd"}


def test_describe_lists_every_hyperparameter():
    names = {item["Name"] for item in HYPERPARAMETERS.describe()}
    assert {"k", "feature_dim", "mini_batch_size", "epochs", "init_method", "extra_center_factor"} <= names
    assert {"local_lloyd_max_iter", "local_lloyd_tol", "local_lloyd_init_method", "local_lloyd_num_trials"} <= names
    assert {"half_life_time_size", "eval_metrics"} <= names
