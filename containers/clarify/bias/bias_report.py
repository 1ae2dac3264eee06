"""Bias reports in ``analysis.json``'s shape: ``{label, label_value_or_threshold, facets: {name: [groups]}}``.

Metrics run per facet group, sorted by name; a metric that cannot be computed becomes
``{"name", "description", "value": null, "error"}`` and the job goes on (smclarify's rule). ±inf is written as the
strings ``"Infinity"`` / ``"-Infinity"``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from containers.clarify.bias.binarise import Outcome, binarise_label, facet_groups
from containers.clarify.bias.metric_base import BiasInputs, Metric, MetricFailure
from containers.clarify.config import AnalysisConfig
from containers.clarify.dataset import Dataset, resolve_column
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["bias_report", "label_outcome", "metric_entry"]


def metric_entry(metric: Metric, inputs: BiasInputs) -> dict[str, Any]:
    """``{"name", "description", "value"}``, or ``value: null`` with ``error``."""
    entry: dict[str, Any] = {"name": metric.name, "description": metric.description}
    try:
        value = float(metric.compute(inputs))
    except (MetricFailure, ValueError, ZeroDivisionError) as exc:
        logger.warning("%s could not be computed: %s", metric.name, exc)
        return {**entry, "value": None, "error": str(exc)}
    if math.isnan(value):
        return {**entry, "value": None, "error": f"{metric.name} is undefined (NaN) on this data"}
    if math.isinf(value):
        return {**entry, "value": "Infinity" if value > 0 else "-Infinity"}
    return {**entry, "value": value}


def label_outcome(dataset: Dataset, config: AnalysisConfig) -> Outcome:
    """The binarised label; a label with a single class after binarisation is a ``UserError``."""
    assert dataset.label is not None and config.label_values_or_threshold is not None
    outcome = binarise_label(dataset.frame[dataset.label], config.label_values_or_threshold)
    positives = int(np.count_nonzero(outcome.positive))
    if positives in (0, len(outcome.positive)):
        kind = "no" if positives == 0 else "every"
        raise UserError(
            f"analysis_config.json: 'label_values_or_threshold' {list(config.label_values_or_threshold)!r} makes "
            f"{kind} row of label column '{dataset.label}' positive: the label has a single class. Fix: use values "
            "or a threshold that split the label into positive and negative outcomes."
        )
    return outcome


def _facet_features(dataset: Dataset, facet: str) -> pd.DataFrame:
    keep = [c for c in dataset.features if c != facet]
    return dataset.frame.loc[:, keep]


def bias_report(
    dataset: Dataset,
    config: AnalysisConfig,
    metrics: Sequence[Metric],
    outcome: Outcome,
    predicted: np.ndarray | None = None,
) -> dict[str, Any]:
    """One stage's report over every configured facet."""
    group = dataset.frame[dataset.group_variable].to_numpy() if dataset.group_variable else None
    facets: dict[str, list[dict[str, Any]]] = {}
    for facet in config.facets:
        name = resolve_column(dataset.frame, facet.name_or_index, "facet.name_or_index")
        features = _facet_features(dataset, name)
        entries = []
        for facet_group in facet_groups(dataset.frame[name], facet.value_or_threshold, name):
            inputs = BiasInputs(facet_group.sensitive, outcome.positive, predicted, group, features)
            entries.append(
                {
                    "value_or_threshold": facet_group.value_or_threshold,
                    "metrics": [metric_entry(m, inputs) for m in sorted(metrics, key=lambda m: m.name)],
                }
            )
        facets[name] = entries
    return {"label": dataset.label, "label_value_or_threshold": outcome.value_or_threshold, "facets": facets}


def select_metrics(registry: Mapping[str, Metric], names: Sequence[str]) -> list[Metric]:
    return [registry[name] for name in names]
