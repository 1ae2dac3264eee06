"""clarify_metric_agreement: every bias metric of the Clarify container against smclarify 0.5 on the same data.

Data: the German credit set (facets ``sex`` = female and ``age`` > 40, group ``housing``, predictions from a seeded
logistic regression) and a 100k-row synthetic set with known bias (a categorical facet with a values list, the same
facet one-vs-rest, a continuous facet with a threshold, numeric features so FT runs). Metrics that fail must fail in
both. smclarify needs ``future.infer_string`` off on pandas 3 (docs/clarify.md#benchmarks). Goal: max_abs_diff <= 1e-9.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import ROOT, emit
from containers.clarify.analysis import analyse
from containers.clarify.config import parse_config
from containers.clarify.dataset import _roles

SYNTHETIC_ROWS = 100_000


def german_credit() -> tuple[pd.DataFrame, list[dict[str, Any]], str]:
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(ROOT / "data" / "german_credit.csv")
    numeric = frame[["credit_amount", "duration", "age", "job"]].to_numpy(dtype=float)
    model = LogisticRegression(max_iter=1000).fit(numeric, frame["risk"])
    frame["prediction"] = model.predict(numeric)
    facets: list[dict[str, Any]] = [
        {"name_or_index": "sex", "value_or_threshold": ["female"]},
        {"name_or_index": "age", "value_or_threshold": [40]},
    ]
    return frame, facets, "housing"


def synthetic(rows: int = SYNTHETIC_ROWS) -> tuple[pd.DataFrame, list[dict[str, Any]], str]:
    rng = np.random.default_rng(11)
    group = rng.choice(["north", "south", "east"], size=rows, p=[0.5, 0.3, 0.2])
    region = rng.integers(0, 4, size=rows)
    income = rng.normal(50, 15, size=rows)
    tenure = rng.exponential(5, size=rows)
    disadvantaged = group == "east"
    score = 0.04 * income + 0.1 * tenure - 0.8 * disadvantaged + rng.normal(0, 1, size=rows)
    label = (score > 2.2).astype(int)
    prediction = ((score + rng.normal(0, 0.7, size=rows)) > 2.3).astype(int)
    frame = pd.DataFrame(
        {"label": label, "group": group, "region": region, "income": income, "tenure": tenure, "prediction": prediction}
    )
    facets: list[dict[str, Any]] = [
        {"name_or_index": "group", "value_or_threshold": ["east"]},
        {"name_or_index": "group"},
        {"name_or_index": "income", "value_or_threshold": [60.0]},
    ]
    return frame, facets, "region"


def ours(frame: pd.DataFrame, facets: list[dict[str, Any]], group: str, label: str) -> dict[tuple[str, ...], Any]:
    config = parse_config(
        {
            "dataset_type": "text/csv",
            "label": label,
            "predicted_label": "prediction",
            "label_values_or_threshold": [1],
            "facet": facets,
            "group_variable": group,
            "methods": {"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": "all"}},
        }
    )
    analysis = analyse(config, _roles(frame, config), Path("."))
    values: dict[tuple[str, ...], Any] = {}
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        for facet, groups in analysis[stage]["facets"].items():
            for entry in groups:
                for metric in entry["metrics"]:
                    values[(stage, facet, entry["value_or_threshold"], metric["name"])] = metric["value"]
    return values


def theirs(frame: pd.DataFrame, facets: list[dict[str, Any]], group: str, label: str) -> dict[tuple[str, ...], Any]:
    from smclarify.bias import report

    values: dict[tuple[str, ...], Any] = {}
    label_column = report.LabelColumn(label, frame[label], [1])
    predicted = report.LabelColumn("prediction", frame["prediction"], [1])
    stages = (
        ("pre_training_bias_metrics", report.StageType.PRE_TRAINING),
        ("post_training_bias_metrics", report.StageType.POST_TRAINING),
    )
    for facet in facets:
        column = report.FacetColumn(facet["name_or_index"], facet.get("value_or_threshold"))
        for key, stage in stages:
            result = report.bias_report(
                frame, column, label_column, stage, predicted, metrics=["all"], group_variable=frame[group]
            )
            for entry in result:
                for metric in entry["metrics"]:
                    values[(key, facet["name_or_index"], entry["value_or_threshold"], metric["name"])] = metric["value"]
    return values


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str):
        return math.copysign(math.inf, -1.0 if value.startswith("-") else 1.0)
    return float(value)


def max_abs_diff(a: dict[tuple[str, ...], Any], b: dict[tuple[str, ...], Any]) -> tuple[float, int]:
    """The largest |a − b| over the union of keys (inf for a key missing on one side or a one-sided failure)."""
    worst = 0.0
    for key in set(a) | set(b):
        if key not in a or key not in b:
            return math.inf, len(a)
        x, y = _number(a[key]), _number(b[key])
        if (math.isnan(x) and math.isnan(y)) or x == y:
            continue
        worst = max(worst, abs(x - y)) if not (math.isnan(x) or math.isnan(y)) else math.inf
    return worst, len(a)


def main() -> None:
    try:
        import smclarify  # noqa: F401
    except ImportError:
        emit(
            "clarify_metric_agreement",
            "smclarify not installed: pip install --no-deps smclarify==0.5",
            max_abs_diff="n/a",
        )
        return
    pd.set_option("future.infer_string", False)
    started = time.perf_counter()
    worst, compared = 0.0, 0
    for name, (frame, facets, group) in (("german", german_credit()), ("synthetic", synthetic())):
        label = "risk" if name == "german" else "label"
        diff, count = max_abs_diff(ours(frame, facets, group, label), theirs(frame, facets, group, label))
        worst, compared = max(worst, diff), compared + count
    emit(
        "clarify_metric_agreement",
        "vs smclarify 0.5 --no-deps, pandas future.infer_string=False; German credit + 100k synthetic; goal <= 1e-9",
        max_abs_diff=f"{worst:.3g}",
        metrics_compared=compared,
        seconds=round(time.perf_counter() - started, 1),
    )


if __name__ == "__main__":
    main()
