"""PCA hyperparameters (docs/algorithms/pca.md#hyperparameters) and the metric lines this container prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from containers.toolkit.errors import UserError
from containers.toolkit.hyperparameters import (
    BUILTIN_HIDDEN_KEYS,
    BooleanHyperparameter,
    CategoricalHyperparameter,
    HyperparameterSpec,
    IntegerHyperparameter,
    Interval,
    config_from_values,
)
from containers.toolkit.metrics import Direction, MetricSpec

HIDDEN_KEYS = ("force_dense", *BUILTIN_HIDDEN_KEYS)
POSITIVE = Interval(min=1)

HYPERPARAMETERS = HyperparameterSpec(
    parameters=(
        IntegerHyperparameter("feature_dim", required=True, range=POSITIVE, description="Input dimension d."),
        IntegerHyperparameter("num_components", required=True, range=POSITIVE, description="Components k."),
        IntegerHyperparameter("mini_batch_size", required=True, range=POSITIVE),
        CategoricalHyperparameter("algorithm_mode", default="regular", choices=("regular", "randomized")),
        BooleanHyperparameter("subtract_mean", default=True),
        IntegerHyperparameter("extra_components", default=-1, range=Interval(min=-1)),
        IntegerHyperparameter("epochs", default=1, range=POSITIVE),
    ),
    ignored=HIDDEN_KEYS,
)

METRICS = (
    MetricSpec(
        "test:reconstruction_msd",
        r"#quality_metric: host=\S+, test reconstruction_msd <loss>=(\S+)",
        Direction.MINIMIZE,
        tunable=False,
    ),
)


@dataclass(frozen=True)
class PCAConfig:
    feature_dim: int
    num_components: int
    mini_batch_size: int
    algorithm_mode: str = "regular"
    subtract_mean: bool = True
    extra_components: int = -1
    seed: int = 0

    @property
    def sketch_size(self) -> int:
        """Randomized mode's l = num_components + extra_components (-1 means max(10, num_components)), at most d."""
        extra = max(10, self.num_components) if self.extra_components == -1 else self.extra_components
        return min(self.feature_dim, self.num_components + extra)

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> PCAConfig:
        return config_from_values(cls, values)


def parse_hyperparameters(raw: dict[str, str]) -> PCAConfig:
    config = PCAConfig.from_values(HYPERPARAMETERS.validate(raw))
    if config.num_components > config.feature_dim:
        raise UserError(
            f"Hyperparameter num_components: value {config.num_components} is larger than "
            f"feature_dim={config.feature_dim}."
        )
    return config
