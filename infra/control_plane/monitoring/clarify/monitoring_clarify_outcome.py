"""The end of a bias or explainability execution: violations against the baseline and CloudWatch records.

Bias (docs/reference/model-monitor-files.md#bias-and-explainability-monitors): the baseline is the baselining job's
``analysis.json``; every facet, facet value and metric of the
pre- and post-training blocks the baseline has is compared with the point rule of ``clarify_compare`` (the value
is worse than the baseline's: |new| > |baseline|, DI around 1; no bootstrap interval). Explainability (same section):
per label, the nDCG of the window's global SHAP ranking scored with the baseline's attributions, < 0.9 violates.

Metrics: ``aws/sagemaker/Endpoints/bias-metrics`` ``bias_metric_<NAME>`` with ``Endpoint``, ``MonitoringSchedule``,
``BiasStage``, ``Label``, ``LabelValue``, ``Facet``, ``FacetValue`` (±inf as ±2.348543e108, nulls skipped), and
``aws/sagemaker/Endpoints/explainability-metrics`` ``feature_<name>`` / ``ExpectedValue`` with ``Endpoint``,
``MonitoringSchedule``, ``ExplainabilityMethod=KernelShap``, ``Label``, ``ValueType``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from infra.control_plane.monitoring.clarify.clarify_compare import (
    BIAS_GROUPS,
    BaselineMismatch,
    attribution_violations,
    bias_violations,
)
from infra.control_plane.monitoring.monitoring_definitions import MonitoringType

__all__ = ["BaselineMismatch", "metric_records", "violations"]

BIAS_NAMESPACE = "aws/sagemaker/Endpoints/bias-metrics"
EXPLAINABILITY_NAMESPACE = "aws/sagemaker/Endpoints/explainability-metrics"
INFINITY_VALUE = 2.348543e108
_STAGES = {"pre_training_bias_metrics": "Pre-training", "post_training_bias_metrics": "Post-training"}


def violations(kind: MonitoringType, current: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The violations of ``current`` against ``baseline``; :class:`BaselineMismatch` when the baseline does not fit."""
    if kind is MonitoringType.MODEL_EXPLAINABILITY:
        return attribution_violations(current, baseline)
    groups = [group for group in BIAS_GROUPS.values() if isinstance(baseline.get(group), Mapping)]
    if not groups:
        raise BaselineMismatch(
            "the baseline constraints have neither 'pre_training_bias_metrics' nor 'post_training_bias_metrics' "
            "(is it the analysis.json of a ModelBiasMonitor baselining job?)"
        )
    return [found for group in groups for found in bias_violations(group, current, baseline)]


def metric_records(
    kind: MonitoringType, analysis: Mapping[str, Any], endpoint: str, schedule: str
) -> list[dict[str, Any]]:
    """PutMetricData records (with ``Namespace``) for the metrics of one ``analysis.json``."""
    now = datetime.now(UTC).isoformat()
    base = [{"Name": "Endpoint", "Value": endpoint}, {"Name": "MonitoringSchedule", "Value": schedule}]
    if kind is MonitoringType.MODEL_EXPLAINABILITY:
        return _shap_records(analysis, base, now)
    records = []
    for group, stage in _STAGES.items():
        block = analysis.get(group) or {}
        label_dims = [
            {"Name": "BiasStage", "Value": stage},
            {"Name": "Label", "Value": str(block.get("label"))},
            {"Name": "LabelValue", "Value": str(block.get("label_value_or_threshold"))},
        ]
        for facet, entries in (block.get("facets") or {}).items():
            for entry in entries or []:
                facet_dims = [
                    {"Name": "Facet", "Value": str(facet)},
                    {"Name": "FacetValue", "Value": str(entry.get("value_or_threshold"))},
                ]
                for metric in entry.get("metrics") or []:
                    value = _finite(metric.get("value"))
                    if value is None:
                        continue
                    records.append(
                        {
                            "Namespace": BIAS_NAMESPACE,
                            "MetricName": f"bias_metric_{metric.get('name')}",
                            "Dimensions": [*base, *label_dims, *facet_dims],
                            "Value": value,
                            "Timestamp": now,
                        }
                    )
    return records


def _shap_records(analysis: Mapping[str, Any], base: list[dict[str, str]], now: str) -> list[dict[str, Any]]:
    records = []
    shap = (analysis.get("explanations") or {}).get("kernel_shap") or {}
    for label, block in shap.items():
        dims = [*base, {"Name": "ExplainabilityMethod", "Value": "KernelShap"}, {"Name": "Label", "Value": label}]
        values = [
            (f"feature_{name}", value, "GlobalShapValues")
            for name, value in (block or {}).get("global_shap_values", {}).items()
        ]
        values.append(("ExpectedValue", (block or {}).get("expected_value"), "ExpectedValue"))
        for name, raw, value_type in values:
            value = _finite(raw)
            if value is not None:
                records.append(
                    {
                        "Namespace": EXPLAINABILITY_NAMESPACE,
                        "MetricName": name,
                        "Dimensions": [*dims, {"Name": "ValueType", "Value": value_type}],
                        "Value": value,
                        "Timestamp": now,
                    }
                )
    return records


def _finite(raw: Any) -> float | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    if math.isnan(value):
        return None
    if math.isinf(value):
        return math.copysign(INFINITY_VALUE, value)
    return value
