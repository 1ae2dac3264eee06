"""The built-in XGBoost algorithm's hyperparameters, metrics and their rules (docs/algorithms/xgboost.md).

The facts (names, types, ranges, metric regexes and directions) are the container's manifest,
``containers/xgboost/manifest.toml``; this module adds what data cannot say: the parsers of list-valued
hyperparameters and the cross-parameter rules. The same objects validate ``hyperparameters.json`` at run time and
describe the algorithm (``MetricDefinitions``, ``CreateAlgorithm`` hyperparameter specs).
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from containers.toolkit.errors import UserError
from containers.toolkit.hyperparameters import Hyperparameter
from containers.toolkit.manifest import CustomParser, fill_metric_template, load_manifest
from containers.toolkit.metrics import Direction, MetricSpec

logger = logging.getLogger(__name__)

MANIFEST = load_manifest(Path(__file__).parent)
_METRIC_GRID = MANIFEST.data["metrics"][0]  # one grid: every XGBoost metric on the train and validation channels
MAXIMIZE_METRICS: tuple[str, ...] = tuple(
    name for name, direction in _METRIC_GRID["directions"].items() if direction == Direction.MAXIMIZE.value
)
MINIMIZE_METRICS: tuple[str, ...] = tuple(
    name for name, direction in _METRIC_GRID["directions"].items() if direction == Direction.MINIMIZE.value
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


_PARSERS: Mapping[str, CustomParser] = {
    "eval_metric": (parse_eval_metric, "[" + ", ".join(METRIC_NAMES) + ", error@t, ndcg@n, map@n]"),
    "updater": (parse_updater, "[" + ", ".join(sorted(_TREE_UPDATERS | _LINEAR_UPDATERS)) + "]"),
    "monotone_constraints": (parse_monotone_constraints, "a tuple of -1, 0 and 1"),
    "interaction_constraints": (parse_interaction_constraints, "a nested list of feature indices"),
    "tuning_objective_metric": (parse_tuning_metric, "validation:<metric> or train:<metric>"),
}
HYPERPARAMETERS = MANIFEST.hyperparameters(_PARSERS, check=check_dependencies)
PARAMETERS: tuple[Hyperparameter, ...] = tuple(HYPERPARAMETERS.parameters)
ALIASES: Mapping[str, str] = HYPERPARAMETERS.aliases
OBJECTIVES: tuple[str, ...] = next(
    tuple(entry["choices"]) for entry in MANIFEST.data["hyperparameters"]["parameters"] if entry["name"] == "objective"
)


def validate(raw: Mapping[str, str]) -> dict[str, Any]:
    """Typed, checked hyperparameters by canonical name (raises UserError with the container's messages)."""
    return HYPERPARAMETERS.validate(raw)


# ----------------------------------------------------------------------------------------------- metrics


def metric_regex(channel: str, name: str) -> str:
    return fill_metric_template(_METRIC_GRID["regex"], channel, name)


METRICS: tuple[MetricSpec, ...] = MANIFEST.metrics


def metric_definitions() -> list[dict[str, str]]:
    """Every ``MetricDefinition`` (``validation:*`` tunable, ``train:*`` informational)."""
    return [spec.definition() for spec in METRICS]
