"""``constraint_violations.json`` (docs/reference/model-monitor-files.md#constraint_violationsjson): every data-quality
check of the current window against the baseline."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from containers.model_monitor.data_quality.constraints import FeatureConstraint, MonitoringConfig
from containers.model_monitor.data_quality.distances import chi_squared_p_value, linf_categorical, linf_numeric, robust
from containers.model_monitor.data_quality.profile import ColumnProfile
from containers.model_monitor.data_quality.statistics import BaselineFeature, DatasetProfile

logger = logging.getLogger(__name__)

__all__ = ["CheckResult", "evaluate"]

DEEQU_MESSAGE = "Value: {value} does not meet the constraint requirement! "


@dataclass
class CheckResult:
    violations: list[dict[str, str]] = field(default_factory=list)
    drift: dict[str, float] = field(default_factory=dict)  # feature -> distance actually compared (for metrics)
    thresholds: dict[str, float] = field(default_factory=dict)

    def add(self, feature: str, check: str, description: str) -> None:
        self.violations.append({"feature_name": feature, "constraint_check_type": check, "description": description})

    def to_json(self) -> dict[str, Any]:
        return {"violations": self.violations}


def evaluate(
    current: DatasetProfile,
    constraints: dict[str, FeatureConstraint],
    statistics: dict[str, BaselineFeature],
    global_config: MonitoringConfig,
) -> CheckResult:
    """Run the column checks, then per-feature type, completeness, domain and drift checks."""
    result = CheckResult()
    _column_checks(current, constraints, result)
    for name, constraint in constraints.items():
        column = current.columns.get(name)
        if column is None or not constraint.config.evaluate_constraints:
            continue
        _data_type_check(column, constraint, result)
        _completeness_check(column, constraint, current.item_count, result)
        _categorical_values_check(column, constraint, result)
        _baseline_drift_check(column, constraint, statistics.get(name), result)
    logger.info("%d violation(s) over %d baseline feature(s)", len(result.violations), len(constraints))
    return result


def _column_checks(current: DatasetProfile, constraints: dict[str, FeatureConstraint], result: CheckResult) -> None:
    expected, observed = list(constraints), list(current.columns)
    counts = f"Number of columns in current dataset: {len(observed)}, in baseline constraints: {len(expected)}."
    for name in expected:
        if name not in current.columns:
            result.add(name, "missing_column_check", f"Column {name} of the baseline is missing. {counts}")
    for name in observed:
        if name not in constraints:
            result.add(name, "extra_column_check", f"Column {name} is not in the baseline. {counts}")


def _data_type_check(column: ColumnProfile, constraint: FeatureConstraint, result: CheckResult) -> None:
    """Share of non-null values of the baseline type (String columns get no type constraint, as in Deequ)."""
    expected = constraint.inferred_type
    if expected not in ("Integral", "Fractional") or column.num_present == 0:
        return
    counts = column.type_counts
    matching = counts["Integral"] + (counts["Fractional"] if expected == "Fractional" else 0)
    ratio = matching / column.num_present
    if ratio < constraint.config.datatype_check_threshold:
        result.add(constraint.name, "data_type_check", DEEQU_MESSAGE.format(value=ratio))


def _completeness_check(column: ColumnProfile, constraint: FeatureConstraint, rows: int, result: CheckResult) -> None:
    if constraint.completeness is None or rows == 0:
        return
    completeness = column.num_present / rows
    if completeness < constraint.completeness:
        result.add(constraint.name, "completeness_check", DEEQU_MESSAGE.format(value=completeness))


def _categorical_values_check(column: ColumnProfile, constraint: FeatureConstraint, result: CheckResult) -> None:
    if not constraint.domains or column.num_present == 0:
        return
    if column.counts is None:
        logger.warning("feature %s: too many distinct values to check its domain; reported as 0.0", constraint.name)
        ratio = 0.0
    else:
        domain = set(constraint.domains)
        ratio = sum(c for v, c in column.counts.items() if v in domain) / column.num_present
    if ratio < constraint.config.domain_content_threshold:
        result.add(constraint.name, "categorical_values_check", DEEQU_MESSAGE.format(value=ratio))


def _baseline_drift_check(
    column: ColumnProfile, constraint: FeatureConstraint, baseline: BaselineFeature | None, result: CheckResult
) -> None:
    config = constraint.config
    if baseline is None or column.num_present == 0:
        return
    if baseline.sketch is not None and column.is_numeric:
        simple = linf_numeric(baseline.sketch, column.sketch)
        n, m = baseline.sketch.total_weight, column.sketch.total_weight
        distance = robust(simple, n, m) if config.comparison_method == "Robust" else simple
        _record_drift(constraint.name, distance, config.comparison_threshold, config, result)
        return
    if baseline.categories and column.counts is not None:
        current = {k: float(v) for k, v in column.counts.items()}
        if config.categorical_drift_method == "ChiSquared":
            p_value = chi_squared_p_value(baseline.categories, current)
            result.drift[constraint.name] = p_value
            result.thresholds[constraint.name] = config.categorical_comparison_threshold
            if (
                config.perform_comparison
                and not math.isnan(p_value)
                and p_value < config.categorical_comparison_threshold
            ):
                result.add(
                    constraint.name,
                    "baseline_drift_check",
                    f"Baseline drift p-value: {p_value} is below threshold: {config.categorical_comparison_threshold}",
                )
            return
        simple = linf_categorical(baseline.categories, current)
        n, m = sum(baseline.categories.values()), float(sum(column.counts.values()))
        distance = robust(simple, n, m) if config.comparison_method == "Robust" else simple
        _record_drift(constraint.name, distance, config.categorical_comparison_threshold, config, result)


def _record_drift(name: str, distance: float, threshold: float, config: MonitoringConfig, result: CheckResult) -> None:
    result.drift[name] = distance
    result.thresholds[name] = threshold
    if config.perform_comparison and distance > threshold:
        result.add(name, "baseline_drift_check", f"Baseline drift distance: {distance} exceeds threshold: {threshold}")
