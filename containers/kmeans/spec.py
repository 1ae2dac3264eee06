"""K-Means hyperparameters (docs/algorithms/kmeans.md#hyperparameters) and metrics
(docs/algorithms/kmeans.md#logs-and-metrics): declared in ``containers/kmeans/manifest.toml``,
with the parsers of its ``auto`` and list values and the typed config here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from containers.toolkit.errors import UserError
from containers.toolkit.hyperparameters import config_from_values
from containers.toolkit.manifest import load_manifest

AUTO = "auto"
AUTO_VALUE = 10  # observed: extra_center_factor=auto gave x10 and local_lloyd_num_trials=auto gave 10 attempts
EVAL_METRICS = ("msd", "ssd")
MANIFEST = load_manifest(Path(__file__).parent)
HIDDEN_KEYS = MANIFEST.ignored_hyperparameters


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


HYPERPARAMETERS = MANIFEST.hyperparameters(
    {
        "auto_or_positive_int": (_auto_or_positive_int, "[auto, 1, inf)"),
        "eval_metrics": (_eval_metrics, '["msd", "ssd"] (a JSON list)'),
    }
)
# The published form, e.g. ``#quality_metric: host=\S+, test msd <loss>=(\S+)``
# (docs/algorithms/kmeans.md#logs-and-metrics).
METRICS = MANIFEST.metrics


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
