"""Everything the built-in XGBoost algorithm declares once: hyperparameters, metrics and their rules
(docs/algorithms/xgboost.md).

The same objects validate ``hyperparameters.json`` at run time and describe the algorithm (``MetricDefinitions``,
``CreateAlgorithm`` hyperparameter specs).
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping
from typing import Any

from containers.toolkit.errors import UserError
from containers.toolkit.hyperparameters import (
    CategoricalHyperparameter,
    ContinuousHyperparameter,
    CustomHyperparameter,
    Hyperparameter,
    HyperparameterSpec,
    IntegerHyperparameter,
    Interval,
)
from containers.toolkit.metrics import Direction, MetricSpec

logger = logging.getLogger(__name__)

MAXIMIZE_METRICS: tuple[str, ...] = (
    "accuracy",
    "auc",
    "aucpr",
    "balanced_accuracy",
    "f1",
    "f1_binary",
    "f1_macro",
    "map",
    "ndcg",
    "precision",
    "r2",
    "recall",
    "precision_macro",
    "precision_micro",
    "recall_macro",
    "recall_micro",
)
MINIMIZE_METRICS: tuple[str, ...] = (
    "aft-nloglik",
    "cox-nloglik",
    "error",
    "gamma-deviance",
    "gamma-nloglik",
    "interval-regression-accuracy",
    "logloss",
    "mae",
    "mape",
    "merror",
    "mlogloss",
    "mphe",
    "mse",
    "poisson-nloglik",
    "rmse",
    "rmsle",
    "tweedie-nloglik",
)
METRIC_NAMES: tuple[str, ...] = MAXIMIZE_METRICS + MINIMIZE_METRICS
# Metrics the container computes itself (custom_metric) rather than asking XGBoost for
# (docs/algorithms/xgboost.md#metrics).
CUSTOM_METRICS: frozenset[str] = frozenset(
    {
        "accuracy",
        "balanced_accuracy",
        "f1",
        "f1_binary",
        "f1_macro",
        "mse",
        "rmse",
        "mae",
        "precision",
        "precision_macro",
        "precision_micro",
        "r2",
        "recall",
        "recall_macro",
        "recall_micro",
    }
)
_THRESHOLD_METRICS = ("error", "ndcg", "map")

OBJECTIVES: tuple[str, ...] = (
    "aft_loss_distribution",
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "count:poisson",
    "multi:softmax",
    "multi:softprob",
    "rank:pairwise",
    "rank:ndcg",
    "rank:map",
    "reg:linear",
    "reg:squarederror",
    "reg:logistic",
    "reg:gamma",
    "reg:pseudohubererror",
    "reg:squaredlogerror",
    "reg:absoluteerror",
    "reg:tweedie",
    "survival:aft",
    "survival:cox",
)
MULTI_OBJECTIVES = ("multi:softmax", "multi:softprob")
_GROW_UPDATERS = frozenset({"grow_colmaker", "distcol", "grow_histmaker", "grow_skmaker", "grow_quantile_histmaker"})
_TREE_UPDATERS = _GROW_UPDATERS | {"sync", "refresh", "prune"}
_LINEAR_UPDATERS = frozenset({"shotgun", "coord_descent"})
TRUE_FALSE = ("true", "false")


def base_metric(name: str) -> str:
    """``error@0.3`` -> ``error``; plain names unchanged."""
    return name.split("@", 1)[0]


def is_maximized(name: str) -> bool:
    return base_metric(name) in MAXIMIZE_METRICS


# ----------------------------------------------------------------------------------------------- parsers


def _parse_metric(name: str) -> str:
    metric = name.strip()
    if metric in METRIC_NAMES:
        return metric
    head, sep, tail = metric.partition("@")
    if sep and head in _THRESHOLD_METRICS:
        float(tail.rstrip("-"))  # ndcg@5- and map@3- are XGBoost's "-" variants
        return metric
    raise ValueError(metric)


def parse_eval_metric(text: str) -> list[str]:
    items = [item for item in text.replace("[", "").replace("]", "").replace('"', "").replace("'", "").split(",")]
    metrics = [_parse_metric(item) for item in items if item.strip()]
    if not metrics:
        raise ValueError(text)
    return metrics


def parse_updater(text: str) -> list[str]:
    updaters = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in updaters if item not in _TREE_UPDATERS | _LINEAR_UPDATERS]
    if not updaters or unknown:
        raise ValueError(text)
    return updaters


def parse_monotone_constraints(text: str) -> tuple[int, ...]:
    value = ast.literal_eval(text)
    items = tuple(value) if isinstance(value, tuple | list) else (value,)
    if not all(isinstance(item, int) and not isinstance(item, bool) and item in (-1, 0, 1) for item in items):
        raise ValueError(text)
    return items


def parse_interaction_constraints(text: str) -> list[list[int]]:
    value = ast.literal_eval(text)
    if not isinstance(value, list | tuple) or not all(isinstance(group, list | tuple) for group in value):
        raise ValueError(text)
    groups = [list(group) for group in value]
    # XGBoost numbers features from 0, so 0 is a valid index here (the AWS container asks for >= 1).
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for group in groups for i in group):
        raise ValueError(text)
    return groups


def parse_tuning_metric(text: str) -> str:
    channel, sep, metric = text.strip().partition(":")
    if not sep or channel not in ("train", "validation") or base_metric(metric) not in METRIC_NAMES:
        raise ValueError(text)
    return f"{channel}:{metric}"


# ----------------------------------------------------------------------------------------------- declarations


def _int(name: str, low: float | None = None, high: float | None = None, **kw: Any) -> IntegerHyperparameter:
    return IntegerHyperparameter(name, range=Interval(min=low, max=high), **kw)


def _float(name: str, low: float | None = None, high: float | None = None, **kw: Any) -> ContinuousHyperparameter:
    return ContinuousHyperparameter(name, range=Interval(min=low, max=high), **kw)


def _open(name: str, low: float | None, high: float | None, *, min_open: bool, max_open: bool) -> Hyperparameter:
    return ContinuousHyperparameter(
        name, range=Interval(min=low, max=high, min_open=min_open, max_open=max_open), tunable=True
    )


def _choice(name: str, *choices: str) -> CategoricalHyperparameter:
    return CategoricalHyperparameter(name, choices=choices)


def _flag(name: str) -> CategoricalHyperparameter:
    return CategoricalHyperparameter(name, choices=TRUE_FALSE, case_sensitive=False)


def _custom(name: str, parser: Any, valid_text: str) -> CustomHyperparameter:
    return CustomHyperparameter(name, parser=parser, valid_text=valid_text)


PARAMETERS: tuple[Hyperparameter, ...] = (
    _int("num_round", 1, required=True, tunable=True),
    _int("num_class", 2),
    _choice("objective", *OBJECTIVES),
    _custom("eval_metric", parse_eval_metric, "[" + ", ".join(METRIC_NAMES) + ", error@t, ndcg@n, map@n]"),
    _choice("booster", "gbtree", "gblinear", "dart"),
    _int("verbosity", 0, 3),
    _int("nthread", 1),
    _float("eta", 0, 1, tunable=True),
    _float("gamma", 0, tunable=True),
    _int("max_depth", 0, tunable=True),
    _float("min_child_weight", 0, tunable=True),
    _float("max_delta_step", 0, tunable=True),
    _open("subsample", 0, 1, min_open=True, max_open=False),
    _open("colsample_bytree", 0, 1, min_open=True, max_open=False),
    _open("colsample_bylevel", 0, 1, min_open=True, max_open=False),
    _open("colsample_bynode", 0, 1, min_open=True, max_open=False),
    _float("lambda", 0, tunable=True),
    _float("alpha", 0, tunable=True),
    _choice("tree_method", "auto", "exact", "approx", "hist", "gpu_hist"),
    ContinuousHyperparameter("sketch_eps", range=Interval(min=0, max=1, min_open=True, max_open=True)),
    ContinuousHyperparameter("scale_pos_weight", range=Interval(min=0, min_open=True)),
    _custom("updater", parse_updater, "[" + ", ".join(sorted(_TREE_UPDATERS | _LINEAR_UPDATERS)) + "]"),
    _choice("dsplit", "row", "col"),
    _int("refresh_leaf", 0, 1),
    _choice("process_type", "default", "update"),
    _choice("grow_policy", "depthwise", "lossguide"),
    _int("max_leaves", 0),
    _int("max_bin", 0),
    _choice("predictor", "auto", "cpu_predictor", "gpu_predictor"),
    _custom("monotone_constraints", parse_monotone_constraints, "a tuple of -1, 0 and 1"),
    _custom("interaction_constraints", parse_interaction_constraints, "a nested list of feature indices"),
    _choice("sample_type", "uniform", "weighted"),
    _choice("normalize_type", "tree", "forest"),
    _float("rate_drop", 0, 1),
    _int("one_drop", 0, 1),
    _float("skip_drop", 0, 1),
    _float("lambda_bias", 0, 1),
    ContinuousHyperparameter("tweedie_variance_power", range=Interval(min=1, max=2, min_open=True, max_open=True)),
    _float("base_score", 0),
    IntegerHyperparameter("seed", range=Interval(min=-(2**31), max=2**31 - 1, min_open=True, max_open=True)),
    _int("num_parallel_tree", 1),
    _int("csv_weights", 0, 1),
    _int("early_stopping_rounds", 1),
    _flag("save_model_on_termination"),
    _choice("aft_loss_distribution", "normal", "logistic", "extreme"),
    _float("aft_loss_distribution_scale", 0),
    _flag("deterministic_histogram"),
    _choice("sampling_method", "uniform", "gradient_based"),
    IntegerHyperparameter("prob_buffer_row", range=Interval(min=1, min_open=True)),
    _flag("use_dask_gpu_training"),
    _flag("single_precision_histogram"),
    _int("_kfold", 2),
    _int("_num_cv_round", 1),
    _custom("_tuning_objective_metric", parse_tuning_metric, "validation:<metric> or train:<metric>"),
)
ALIASES: Mapping[str, str] = {
    "learning_rate": "eta",
    "min_split_loss": "gamma",
    "reg_lambda": "lambda",
    "reg_alpha": "alpha",
}
# Hyperparameters the container consumes itself; everything else goes to XGBoost.
CONTAINER_ONLY = frozenset(
    {
        "num_round",
        "eval_metric",
        "csv_weights",
        "early_stopping_rounds",
        "save_model_on_termination",
        "use_dask_gpu_training",
        "_kfold",
        "_num_cv_round",
        "_tuning_objective_metric",
    }
)
# Accepted for compatibility but gone from XGBoost 3: dropped with a warning instead of XGBoost's "not used" noise.
REMOVED_IN_XGBOOST_3 = frozenset(
    {"single_precision_histogram", "deterministic_histogram", "dsplit", "lambda_bias", "prob_buffer_row", "predictor"}
)


# ----------------------------------------------------------------------------------------------- cross-parameter rules


def _check_num_class(values: Mapping[str, Any]) -> None:
    objective = values.get("objective")
    if objective in MULTI_OBJECTIVES and "num_class" not in values:
        raise UserError("Require input for parameter 'num_class' for multi-classification problems.")
    if "num_class" in values and objective is None:
        raise UserError("Do not need to setup parameter 'num_class' without an objective: set objective too.")
    if "num_class" in values and objective not in MULTI_OBJECTIVES:
        raise UserError(
            f"Do not need to setup parameter 'num_class' for learning task other than multi-classification "
            f"(objective {objective})."
        )


def metric_names(values: Mapping[str, Any]) -> list[str]:
    """The metrics asked for: ``eval_metric`` plus the tuning objective's metric (sorted when both are given)."""
    metrics = list(values.get("eval_metric") or [])
    tuning = values.get("_tuning_objective_metric")
    if tuning:
        tuned = tuning.split(":", 1)[1]
        if tuned not in metrics:
            metrics.append(tuned)
        if values.get("eval_metric"):
            metrics.sort()
    return metrics


def _check_metrics(values: Mapping[str, Any]) -> None:
    objective = str(values.get("objective") or "")
    metrics = {base_metric(name) for name in metric_names(values)}
    if "auc" in metrics and not objective.startswith(("binary:", "rank:")):
        raise UserError("Metric 'auc' can only be applied for classification and ranking problems.")
    if "aft-nloglik" in metrics and objective != "survival:aft":
        raise UserError("Metric 'aft-nloglik' can only be applied for the objective 'survival:aft'.")


def _check_constraints(values: Mapping[str, Any]) -> None:
    tree_method = values.get("tree_method")
    if "monotone_constraints" in values and tree_method not in (None, "exact", "hist"):
        raise UserError("monotone_constraints can be used only when tree_method is 'exact' or 'hist'.")
    if "interaction_constraints" in values and tree_method not in (None, "exact", "hist", "approx"):
        raise UserError("interaction_constraints can be used only when tree_method is 'exact', 'hist' or 'approx'.")


def _check_updater(values: Mapping[str, Any]) -> None:
    updaters = values.get("updater")
    if not updaters:
        return
    if values.get("process_type") == "update":
        if not set(updaters) <= {"refresh", "prune"}:
            raise UserError("With process_type 'update' the updater may only be 'refresh' and/or 'prune'.")
    elif values.get("booster") == "gblinear":
        if len(updaters) != 1 or updaters[0] not in _LINEAR_UPDATERS:
            raise UserError("With booster 'gblinear' the updater must be exactly one of 'shotgun', 'coord_descent'.")
    elif set(updaters) & _LINEAR_UPDATERS or len(set(updaters) & _GROW_UPDATERS) > 1:
        raise UserError("Tree updaters may contain at most one grow plugin and no linear updater.")


def check_dependencies(values: dict[str, Any]) -> None:
    _check_num_class(values)
    _check_metrics(values)
    _check_constraints(values)
    _check_updater(values)
    if values.get("tree_method") == "gpu_hist":
        raise UserError("tree_method 'gpu_hist' needs a GPU; this container is CPU-only. Use 'hist'.")
    if values.get("use_dask_gpu_training") == "true":
        raise UserError("use_dask_gpu_training=true needs GPUs; this container is CPU-only.")


HYPERPARAMETERS = HyperparameterSpec(parameters=PARAMETERS, aliases=ALIASES, check=check_dependencies)


def validate(raw: Mapping[str, str]) -> dict[str, Any]:
    """Typed, checked hyperparameters by canonical name (raises UserError with the container's messages)."""
    return HYPERPARAMETERS.validate(raw)


# ----------------------------------------------------------------------------------------------- metrics


def metric_regex(channel: str, name: str) -> str:
    return rf".*\[[0-9]+\].*#011{channel}-{name}:(\S+)"


def _metric_spec(channel: str, name: str) -> MetricSpec:
    direction = Direction.MAXIMIZE if name in MAXIMIZE_METRICS else Direction.MINIMIZE
    return MetricSpec(f"{channel}:{name}", metric_regex(channel, name), direction, tunable=channel == "validation")


METRICS: tuple[MetricSpec, ...] = tuple(
    _metric_spec(channel, name) for channel in ("validation", "train") for name in METRIC_NAMES
)


def metric_definitions() -> list[dict[str, str]]:
    """Every ``MetricDefinition`` (``validation:*`` tunable, ``train:*`` informational)."""
    return [spec.definition() for spec in METRICS]
