"""K-Means hyperparameters (docs/algorithms/kmeans.md#hyperparameters) and metrics
(docs/algorithms/kmeans.md#logs-and-metrics), declared once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from containers.toolkit.errors import UserError
from containers.toolkit.hyperparameters import (
    BUILTIN_HIDDEN_KEYS,
    BooleanHyperparameter,
    CategoricalHyperparameter,
    ContinuousHyperparameter,
    CustomHyperparameter,
    HyperparameterSpec,
    IntegerHyperparameter,
    Interval,
    config_from_values,
)
from containers.toolkit.metrics import Direction, MetricSpec

AUTO = "auto"
AUTO_VALUE = 10  # observed: extra_center_factor=auto gave x10 and local_lloyd_num_trials=auto gave 10 attempts
EVAL_METRICS = ("msd", "ssd")
HIDDEN_KEYS = BUILTIN_HIDDEN_KEYS
POSITIVE = Interval(min=1)


def _auto_or_positive_int(text: str) -> int | str:
    if text.strip().lower() == AUTO:
        return AUTO
    number = float(text)
    if not number.is_integer() or number < 1:
        raise ValueError(text)
    return int(number)


def _eval_metrics(text: str) -> tuple[str, ...]:
    stripped = text.strip()
    if stripped.startswith("["):
        decoded = json.loads(stripped.replace("'", '"'))
        if not isinstance(decoded, list):
            raise ValueError(text)
        names = [str(item).strip().lower() for item in decoded]
    else:
        names = [part.strip().lower() for part in stripped.split(",") if part.strip()]
    if not names or any(name not in EVAL_METRICS for name in names):
        raise ValueError(text)
    return tuple(dict.fromkeys(names))


HYPERPARAMETERS = HyperparameterSpec(
    parameters=(
        IntegerHyperparameter("feature_dim", required=True, range=POSITIVE, description="Number of features."),
        IntegerHyperparameter("k", required=True, range=POSITIVE, description="Number of clusters."),
        IntegerHyperparameter("mini_batch_size", default=5000, range=POSITIVE, tunable=True),
        IntegerHyperparameter("epochs", default=1, range=POSITIVE, tunable=True),
        CategoricalHyperparameter("init_method", default="random", choices=("random", "kmeans++"), tunable=True),
        CustomHyperparameter(
            "extra_center_factor", default=AUTO, parser=_auto_or_positive_int, valid_text="[auto, 1, inf)", tunable=True
        ),
        IntegerHyperparameter("local_lloyd_max_iter", default=300, range=POSITIVE),
        ContinuousHyperparameter("local_lloyd_tol", default=0.0001, range=Interval(min=0, max=1)),
        CategoricalHyperparameter("local_lloyd_init_method", default="kmeans++", choices=("random", "kmeans++")),
        CustomHyperparameter(
            "local_lloyd_num_trials", default=AUTO, parser=_auto_or_positive_int, valid_text="[auto, 1, inf)"
        ),
        IntegerHyperparameter("half_life_time_size", default=0, range=Interval(min=0)),
        CustomHyperparameter(
            "eval_metrics", default=("msd",), parser=_eval_metrics, valid_text='["msd", "ssd"] (a JSON list)'
        ),
        BooleanHyperparameter("force_dense", default=True),
    ),
    ignored=HIDDEN_KEYS,
)


def _regex(channel: str, metric: str) -> str:
    """The published form, e.g. ``#quality_metric: host=\\S+, test msd <loss>=(\\S+)``
    (docs/algorithms/kmeans.md#logs-and-metrics)."""
    return rf"#quality_metric: host=\S+, {channel} {metric} <loss>=(\S+)"


METRICS = (
    MetricSpec("test:msd", _regex("test", "msd"), Direction.MINIMIZE),
    MetricSpec("test:ssd", _regex("test", "ssd"), Direction.MINIMIZE),
    MetricSpec("train:msd", _regex("train", "msd"), Direction.MINIMIZE, tunable=False),
)


@dataclass(frozen=True)
class KMeansConfig:
    """Validated hyperparameters with ``auto`` resolved."""

    feature_dim: int
    k: int
    mini_batch_size: int = 5000
    epochs: int = 1
    init_method: str = "random"
    extra_center_factor: int = AUTO_VALUE
    local_lloyd_max_iter: int = 300
    local_lloyd_tol: float = 0.0001
    local_lloyd_init_method: str = "kmeans++"
    local_lloyd_num_trials: int = AUTO_VALUE
    half_life_time_size: int = 0
    eval_metrics: tuple[str, ...] = ("msd",)
    seed: int = 0

    @property
    def working_centers(self) -> int:
        """K = k * extra_center_factor, the number of centers of the streaming stage."""
        return self.k * self.extra_center_factor

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> KMeansConfig:
        def resolve(value: Any) -> int:
            return AUTO_VALUE if value == AUTO else int(value)

        return config_from_values(
            cls,
            values,
            extra_center_factor=resolve(values["extra_center_factor"]),
            local_lloyd_num_trials=resolve(values["local_lloyd_num_trials"]),
        )


def parse_hyperparameters(raw: dict[str, str]) -> KMeansConfig:
    """Validate ``hyperparameters.json`` strings; raises UserError naming the parameter."""
    values = HYPERPARAMETERS.validate(raw)
    if values["k"] < 1:
        raise UserError("Hyperparameter k: value must be a positive integer.")
    return KMeansConfig.from_values(values)
