"""PCA hyperparameters (docs/algorithms/pca.md#hyperparameters) and the metric lines this container prints: declared in
``containers/pca/manifest.toml``, with the typed config here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from containers.toolkit.errors import UserError
from containers.toolkit.hyperparameters import config_from_values
from containers.toolkit.manifest import load_manifest

MANIFEST = load_manifest(Path(__file__).parent)
HIDDEN_KEYS = MANIFEST.ignored_hyperparameters
HYPERPARAMETERS = MANIFEST.hyperparameters()
METRICS = MANIFEST.metrics


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
