"""Compare a new Clarify ``analysis.json`` with a baseline one
(docs/reference/model-monitor-files.md#bias-and-explainability-monitors): bias and attribution drift.

Bias: for each facet, facet value and metric present in both files, the new value violates when it is farther from
"no bias" than the baseline value (|new| > |baseline|; for DI, |new − 1| > |baseline − 1|). Explainability: per
label, the nDCG of the new global SHAP ranking scored with the baseline's attributions; below 0.9 is a violation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

BIAS_GROUPS = {"DATA_BIAS": "pre_training_bias_metrics", "MODEL_BIAS": "post_training_bias_metrics"}
NDCG_THRESHOLD = 0.9
_IDEAL_ONE = frozenset({"DI"})
_TOLERANCE = 1e-12


class BaselineMismatch(ValueError):
    """The baseline file is not an ``analysis.json`` of the expected kind."""


def violations(check_type: str, current: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[dict[str, Any]]:
    if check_type in BIAS_GROUPS:
        return bias_violations(BIAS_GROUPS[check_type], current, baseline)
    return attribution_violations(current, baseline)


def bias_violations(group: str, current: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(baseline.get(group), Mapping):
        raise BaselineMismatch(f"the baseline constraints have no {group!r} block (is it a Clarify analysis.json?)")
    base = dict(_metric_values(baseline[group]))
    found = []
    for (facet, value, metric), new in _metric_values(current.get(group) or {}):
        old = base.get((facet, value, metric))
        if old is None or new is None or math.isnan(old) or math.isnan(new):
            continue
        ideal = 1.0 if metric in _IDEAL_ONE else 0.0
        if abs(new - ideal) > abs(old - ideal) + _TOLERANCE:
            found.append(
                {
                    "facet": facet,
                    "facet_value": value,
                    "metric_name": metric,
                    "constraint_check_type": "bias_drift_check",
                    "description": f"Value {new} does not meet the constraint requirement (baseline {old})",
                }
            )
    return found


def _metric_values(block: Mapping[str, Any]) -> Iterator[tuple[tuple[str, str, str], float | None]]:
    for facet, entries in (block.get("facets") or {}).items():
        for entry in entries or []:
            value = str(entry.get("value_or_threshold"))
            for metric in entry.get("metrics") or []:
                yield (str(facet), value, str(metric.get("name"))), _number(metric.get("value"))


def _number(raw: Any) -> float | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        return float(raw)  # "Infinity" / "-Infinity" included
    except (TypeError, ValueError):
        return None


def attribution_violations(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[dict[str, Any]]:
    base_shap = _global_shap(baseline)
    if not base_shap:
        raise BaselineMismatch("the baseline constraints have no explanations.kernel_shap global_shap_values")
    found = []
    for label, values in _global_shap(current).items():
        reference = base_shap.get(label)
        if reference is None:
            continue
        score = ndcg(reference, values)
        if score < NDCG_THRESHOLD:
            found.append(
                {
                    "label": label,
                    "metric_name": "shap",
                    "constraint_check_type": "feature_attribution_drift_check",
                    "description": f"Feature attribution drift {score} exceeds threshold {NDCG_THRESHOLD}",
                }
            )
    return found


def _global_shap(document: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    shap = (document.get("explanations") or {}).get("kernel_shap") or {}
    result: dict[str, dict[str, float]] = {}
    for label, block in shap.items():
        values = (block or {}).get("global_shap_values") or {}
        numbers = {str(k): _number(v) for k, v in values.items()}
        result[str(label)] = {k: v for k, v in numbers.items() if v is not None}
    return result


def ndcg(baseline: Mapping[str, float], current: Mapping[str, float]) -> float:
    """nDCG of the current ranking, gains = baseline attributions (equals sklearn's ``ndcg_score``)."""
    features = [f for f in baseline if f in current]
    ideal_order = sorted(features, key=lambda f: baseline[f], reverse=True)
    current_order = sorted(features, key=lambda f: current[f], reverse=True)
    ideal = sum(baseline[f] / math.log2(i + 2) for i, f in enumerate(ideal_order))
    if ideal <= 0:
        return 1.0
    return sum(baseline[f] / math.log2(i + 2) for i, f in enumerate(current_order)) / ideal
