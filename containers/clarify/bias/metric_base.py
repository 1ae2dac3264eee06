"""What every bias metric receives, and smclarify's arithmetic conventions (``divide``, errors)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["INFINITY", "BiasInputs", "Metric", "MetricFailure", "count", "divide"]

INFINITY = float("inf")


class MetricFailure(ValueError):
    """A metric that cannot be computed on this data; reported as ``{"value": null, "error": ...}``."""


@dataclass(frozen=True)
class BiasInputs:
    """Boolean indices for one facet group: ``sensitive`` is *d*; ``features`` excludes facet and labels."""

    sensitive: np.ndarray
    label: np.ndarray
    predicted: np.ndarray | None = None
    group: np.ndarray | None = None
    features: pd.DataFrame | None = None

    @property
    def require_predicted(self) -> np.ndarray:
        if self.predicted is None:
            raise MetricFailure("predicted labels are required for post-training metrics")
        return self.predicted

    def check_groups(self) -> None:
        if not self.sensitive.any():
            raise MetricFailure("Facet set is empty")
        if self.sensitive.all():
            raise MetricFailure("Negated facet set is empty")


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    compute: Callable[[BiasInputs], float]


def divide(a: float, b: float) -> float:
    """``a / b`` with 0/0 = 0 and x/0 = ±inf, as smclarify."""
    if b == 0 and a == 0:
        return 0.0
    if b == 0:
        return -INFINITY if a < 0 else INFINITY
    return a / b


def count(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask))
