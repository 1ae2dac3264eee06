"""``constraints.json`` (data quality, docs/reference/model-monitor-files.md#constraintsjson): suggested from a profile,
and read back (tolerantly) as a baseline.

Suggestion rules, after Deequ's suggestion rules as Model Monitor applies them:

* ``completeness`` is the observed non-null share;
* numeric columns get ``num_constraints.is_non_negative`` (true when the observed minimum is >= 0);
* String and Integral columns get ``string_constraints.domains`` when the share of distinct values seen exactly once
  is <= 0.1 (``CategoricalRangeRule``), values listed by descending frequency;
* ``monitoring_config`` carries the values the AWS container emits (thresholds 1.0, drift 0.1, Robust, LInfinity).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from containers.model_monitor.data_quality.profile import ColumnProfile
from containers.model_monitor.data_quality.statistics import DatasetProfile, read_json
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["FeatureConstraint", "MonitoringConfig", "load_constraints", "suggest_constraints"]

UNIQUE_SHARE_MAX = 0.1
DOMAIN_MAX_VALUES = 1000


def default_monitoring_config() -> dict[str, Any]:
    return {
        "evaluate_constraints": "Enabled",
        "emit_metrics": "Enabled",
        "datatype_check_threshold": 1.0,
        "domain_content_threshold": 1.0,
        "distribution_constraints": {
            "perform_comparison": "Enabled",
            "comparison_threshold": 0.1,
            "comparison_method": "Robust",
            "categorical_comparison_threshold": 0.1,
            "categorical_drift_method": "LInfinity",
        },
    }


def suggest_constraints(profile: DatasetProfile) -> dict[str, Any]:
    return {
        "version": 0.0,
        "features": [_suggest(c, profile.item_count) for c in profile.columns.values()],
        "monitoring_config": default_monitoring_config(),
    }


def _suggest(column: ColumnProfile, item_count: int) -> dict[str, Any]:
    feature: dict[str, Any] = {
        "name": column.name,
        "inferred_type": column.inferred_type,
        "completeness": column.num_present / item_count if item_count else 0.0,
    }
    if column.is_numeric:
        feature["num_constraints"] = {"is_non_negative": bool(column.num_min >= 0)}
    if column.inferred_type in ("String", "Integral") and column.counts:
        singletons = sum(1 for c in column.counts.values() if c == 1)
        if singletons / len(column.counts) <= UNIQUE_SHARE_MAX and len(column.counts) <= DOMAIN_MAX_VALUES:
            ordered = sorted(column.counts.items(), key=lambda item: (-item[1], item[0]))
            feature["string_constraints"] = {"domains": [value for value, _ in ordered]}
    return feature


@dataclass(frozen=True)
class MonitoringConfig:
    """``monitoring_config`` (global or a feature's override), with both spellings of every option accepted."""

    evaluate_constraints: bool = True
    emit_metrics: bool = True
    datatype_check_threshold: float = 1.0
    domain_content_threshold: float = 1.0
    perform_comparison: bool = True
    comparison_threshold: float = 0.1
    comparison_method: str = "Robust"
    categorical_comparison_threshold: float = 0.1
    categorical_drift_method: str = "LInfinity"

    @classmethod
    def parse(cls, raw: dict[str, Any], base: MonitoringConfig | None = None) -> MonitoringConfig:
        base = base or cls()
        dist = raw.get("distribution_constraints") or {}
        threshold = _num(dist.get("comparison_threshold", raw.get("comparison_threshold")), base.comparison_threshold)
        legacy_enable = raw.get("enable_comparisons")
        perform = dist.get("perform_comparison", legacy_enable)
        method = str(dist.get("comparison_method", base.comparison_method))
        return cls(
            evaluate_constraints=_enabled(raw.get("evaluate_constraints"), base.evaluate_constraints),
            emit_metrics=_enabled(raw.get("emit_metrics"), base.emit_metrics),
            datatype_check_threshold=_num(raw.get("datatype_check_threshold"), base.datatype_check_threshold),
            domain_content_threshold=_num(
                raw.get("domain_content_threshold", raw.get("min_domain_mass")), base.domain_content_threshold
            ),
            perform_comparison=_enabled(perform, base.perform_comparison),
            comparison_threshold=threshold,
            comparison_method="Simple" if method.lower() in ("simple", "linf_simple") else "Robust",
            categorical_comparison_threshold=_num(
                dist.get("categorical_comparison_threshold"),
                threshold
                if "comparison_threshold" in dist or "comparison_threshold" in raw
                else base.categorical_comparison_threshold,
            ),
            categorical_drift_method=str(dist.get("categorical_drift_method", base.categorical_drift_method)),
        )


@dataclass(frozen=True)
class FeatureConstraint:
    name: str
    inferred_type: str
    completeness: float | None
    is_non_negative: bool | None
    domains: tuple[str, ...] | None
    config: MonitoringConfig = field(default_factory=MonitoringConfig)


def load_constraints(path: Path, drift_method: str | None) -> tuple[MonitoringConfig, dict[str, FeatureConstraint]]:
    """The global config and the per-feature constraints (overrides applied); ``drift_method`` wins if set."""
    raw = read_json(path, "baseline constraints")
    global_config = MonitoringConfig.parse(raw.get("monitoring_config") or {})
    if drift_method:
        global_config = _with_method(global_config, drift_method)
    features: dict[str, FeatureConstraint] = {}
    for entry in raw.get("features") or []:
        try:
            features[str(entry["name"])] = _feature(entry, global_config, drift_method)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(
                f"Baseline constraints {path} has a malformed feature {str(entry)[:120]}: {exc!r}. "
                "Fix it to the constraints.json schema."
            ) from exc
    return global_config, features


def _feature(entry: dict[str, Any], global_config: MonitoringConfig, drift_method: str | None) -> FeatureConstraint:
    strings = entry.get("string_constraints") or {}
    overrides = entry.get("monitoringConfigOverrides") or strings.get("monitoring_config_overrides") or {}
    config = MonitoringConfig.parse(overrides, global_config) if overrides else global_config
    if drift_method:
        config = _with_method(config, drift_method)
    domains = strings.get("domains")
    completeness = entry.get("completeness")
    return FeatureConstraint(
        name=str(entry["name"]),
        inferred_type=str(entry.get("inferred_type", "Unknown")),
        completeness=None if completeness is None else float(completeness),
        is_non_negative=(entry.get("num_constraints") or {}).get("is_non_negative"),
        domains=None if domains is None else tuple(str(v) for v in domains),
        config=config,
    )


def _with_method(config: MonitoringConfig, method: str) -> MonitoringConfig:
    from dataclasses import replace

    return replace(config, categorical_drift_method=method)


def _enabled(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("enabled", "true", "1")


def _num(value: Any, default: float) -> float:
    """Plain floats; scientific notation and numeric strings are accepted too."""
    if value is None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise UserError(f"constraints value {value!r} is not a number; write a plain float such as 0.1.") from exc
