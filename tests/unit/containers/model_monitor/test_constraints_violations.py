from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats as scipy_stats

from containers.model_monitor.data_quality.constraints import MonitoringConfig, load_constraints, suggest_constraints
from containers.model_monitor.data_quality.distances import chi_squared_p_value, linf_categorical, linf_numeric, robust
from containers.model_monitor.data_quality.kll import KLLSketch
from containers.model_monitor.data_quality.statistics import DatasetProfile, load_statistics
from containers.model_monitor.data_quality.violations import evaluate


def profile_of(columns: dict[str, list[str | None]]) -> DatasetProfile:
    profile = DatasetProfile()
    profile.update(pa.table({k: pa.array(v, type=pa.string()) for k, v in columns.items()}))
    return profile


BASELINE = {
    "count": [str(i % 5) for i in range(100)],
    "price": [f"{v:.3f}" for v in np.random.default_rng(0).normal(10, 1, 100)],
    "delta": [f"{v:.3f}" for v in np.random.default_rng(1).normal(0, 1, 100)],
    "color": ["red"] * 60 + ["blue"] * 40,
}


@pytest.fixture
def baseline(tmp_path):
    profile = profile_of(BASELINE)
    (tmp_path / "statistics.json").write_text(json.dumps(profile.to_json()))
    (tmp_path / "constraints.json").write_text(json.dumps(suggest_constraints(profile)))
    global_config, constraints = load_constraints(tmp_path / "constraints.json", None)
    _, statistics = load_statistics(tmp_path / "statistics.json")
    return global_config, constraints, statistics, json.loads((tmp_path / "constraints.json").read_text())


def checks(baseline, columns) -> list[tuple[str, str]]:
    global_config, constraints, statistics, _ = baseline
    result = evaluate(profile_of(columns), constraints, statistics, global_config)
    return sorted((v["feature_name"], v["constraint_check_type"]) for v in result.violations)


def test_suggested_constraints(baseline) -> None:
    document = baseline[3]
    features = {f["name"]: f for f in document["features"]}
    assert features["count"] == {
        "name": "count",
        "inferred_type": "Integral",
        "completeness": 1.0,
        "num_constraints": {"is_non_negative": True},
        "string_constraints": {"domains": ["0", "1", "2", "3", "4"]},
    }
    assert features["price"]["inferred_type"] == "Fractional"
    assert features["price"]["num_constraints"] == {"is_non_negative": True}
    assert "string_constraints" not in features["price"]  # all values unique: not categorical
    assert features["delta"]["num_constraints"] == {"is_non_negative": False}
    assert features["color"] == {
        "name": "color",
        "inferred_type": "String",
        "completeness": 1.0,
        "string_constraints": {"domains": ["red", "blue"]},
    }
    assert document["monitoring_config"] == {
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


def test_completeness_suggestion_is_observed_share() -> None:
    document = suggest_constraints(profile_of({"a": ["1", None, "2", None]}))
    assert document["features"][0]["completeness"] == 0.5


def test_same_distribution_has_no_violation(baseline) -> None:
    assert checks(baseline, BASELINE) == []


def test_data_type_check(baseline) -> None:
    current = dict(BASELINE, count=["1.5", *BASELINE["count"][1:]])
    assert ("count", "data_type_check") in checks(baseline, current)


def test_completeness_check(baseline) -> None:
    current = dict(BASELINE, color=[None, *BASELINE["color"][1:]])
    assert checks(baseline, current) == [("color", "completeness_check")]


def test_baseline_drift_check_numeric(baseline) -> None:
    shifted = [f"{v:.3f}" for v in np.random.default_rng(5).normal(12, 1, 100)]
    current = dict(BASELINE, price=shifted)
    global_config, constraints, statistics, _ = baseline
    result = evaluate(profile_of(current), constraints, statistics, global_config)
    assert ("price", "baseline_drift_check") in [
        (v["feature_name"], v["constraint_check_type"]) for v in result.violations
    ]
    simple = scipy_stats.ks_2samp([float(v) for v in BASELINE["price"]], [float(v) for v in shifted]).statistic
    assert result.drift["price"] == pytest.approx(robust(simple, 100, 100))
    assert result.drift["price"] > 0.1
    message = next(v["description"] for v in result.violations if v["feature_name"] == "price")
    assert message.startswith("Baseline drift distance: ") and "exceeds threshold: 0.1" in message


def test_baseline_drift_check_categorical(baseline) -> None:
    current = dict(BASELINE, color=["blue"] * 90 + ["red"] * 10)
    assert checks(baseline, current) == [("color", "baseline_drift_check")]


def test_missing_and_extra_column_checks(baseline) -> None:
    current = {k: v for k, v in BASELINE.items() if k != "delta"} | {"new": ["x"] * 100}
    assert checks(baseline, current) == [("delta", "missing_column_check"), ("new", "extra_column_check")]


def test_categorical_values_check(baseline) -> None:
    current = dict(BASELINE, color=["green", *BASELINE["color"][1:]])
    found = checks(baseline, current)
    assert ("color", "categorical_values_check") in found
    global_config, constraints, statistics, _ = baseline
    result = evaluate(profile_of(current), constraints, statistics, global_config)
    text = next(v["description"] for v in result.violations if v["constraint_check_type"] == "categorical_values_check")
    assert text == "Value: 0.99 does not meet the constraint requirement! "


def test_thresholds_and_overrides(tmp_path, baseline) -> None:
    document = baseline[3]
    document["monitoring_config"]["distribution_constraints"]["perform_comparison"] = "Disabled"
    document["monitoring_config"]["domain_content_threshold"] = 0.9
    (tmp_path / "c.json").write_text(json.dumps(document))
    global_config, constraints = load_constraints(tmp_path / "c.json", None)
    current = dict(BASELINE, color=["green"] * 5 + ["blue"] * 95)
    result = evaluate(profile_of(current), constraints, baseline[2], global_config)
    assert [(v["feature_name"], v["constraint_check_type"]) for v in result.violations] == []
    assert result.drift["color"] > 0.1  # still measured for the metric, just not compared


def test_legacy_and_spelling_variants() -> None:
    config = MonitoringConfig.parse({"enable_comparisons": False, "min_domain_mass": "1e-1", "comparison_threshold": 1})
    assert config.perform_comparison is False
    assert config.domain_content_threshold == 0.1
    assert config.categorical_comparison_threshold == 1.0
    assert (
        MonitoringConfig.parse({"distribution_constraints": {"comparison_method": "linf_simple"}}).comparison_method
        == "Simple"
    )


def test_distances() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=500), rng.normal(0.3, size=700)
    first, second = KLLSketch(), KLLSketch()
    first.update(a)
    second.update(b)
    assert linf_numeric(first, second) == pytest.approx(scipy_stats.ks_2samp(a, b).statistic)
    assert linf_categorical({"x": 6, "y": 4}, {"x": 2, "y": 8}) == pytest.approx(0.4)
    assert robust(0.4, 10, 10) == pytest.approx(max(0.0, 0.4 - 1.8 * np.sqrt(20 / 100)))
    same = chi_squared_p_value({"x": 500, "y": 500}, {"x": 250, "y": 250})
    shifted = chi_squared_p_value({"x": 500, "y": 500}, {"x": 400, "y": 100})
    assert same == pytest.approx(1.0) and shifted < 1e-6
    assert np.isnan(chi_squared_p_value({"x": 5}, {"x": 5}))


def test_chi_squared_drift_method(tmp_path, baseline) -> None:
    document = baseline[3]
    (tmp_path / "c.json").write_text(json.dumps(document))
    global_config, constraints = load_constraints(tmp_path / "c.json", "ChiSquared")
    current = dict(BASELINE, color=["blue"] * 90 + ["red"] * 10)
    result = evaluate(profile_of(current), constraints, baseline[2], global_config)
    assert ("color", "baseline_drift_check") in [
        (v["feature_name"], v["constraint_check_type"]) for v in result.violations
    ]
    assert result.drift["color"] < 0.1
