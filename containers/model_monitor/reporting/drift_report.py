"""The drift report: per-feature distribution plots (baseline versus now) as PNG files and one HTML page.

Written to ``<output_path>/drift_report/``: ``index.html`` and ``<feature>.png``. Numeric features are drawn as the
share of values per bin over the union of both ranges (20 equal-width bins, from the two KLL sketches); categorical
features as the share of the 15 most frequent values. Each title carries the distance, its threshold and whether
the feature drifted.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from containers.model_monitor.data_quality.profile import ColumnProfile
from containers.model_monitor.data_quality.statistics import BaselineFeature, DatasetProfile
from containers.model_monitor.data_quality.violations import CheckResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

logger = logging.getLogger(__name__)

__all__ = ["write_drift_report"]

BINS = 20
TOP_CATEGORIES = 15


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "feature"


def write_drift_report(
    output: Path, baseline: Mapping[str, BaselineFeature], current: DatasetProfile, result: CheckResult
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = output / "drift_report"
    directory.mkdir(parents=True, exist_ok=True)
    flagged = {(v["feature_name"], v["constraint_check_type"]) for v in result.violations}
    rows = []
    for name, feature in baseline.items():
        column = current.columns.get(name)
        if column is None:
            continue
        figure, axis = plt.subplots(figsize=(6, 3.2))
        drawn = _draw(axis, feature, column)
        if not drawn:
            plt.close(figure)
            continue
        distance = result.drift.get(name)
        drifted = (name, "baseline_drift_check") in flagged
        text = "n/a" if distance is None else f"{distance:.4f}"
        axis.set_title(
            f"{name}: distance {text} (threshold {result.thresholds.get(name, float('nan'))})"
            + (" DRIFT" if drifted else ""),
            fontsize=9,
            color="crimson" if drifted else "black",
        )
        axis.legend(fontsize=8)
        figure.tight_layout()
        image = f"{_safe(name)}.png"
        figure.savefig(directory / image, dpi=90)
        plt.close(figure)
        checks = sorted(check for feat, check in flagged if feat == name)
        rows.append((name, text, drifted, checks, image))
    page = _page(rows, len(result.violations), current.item_count)
    (directory / "index.html").write_text(page, encoding="utf-8")
    logger.info("wrote the drift report (%d plot(s)) to %s", len(rows), directory)
    return directory / "index.html"


def _draw(axis: Axes, feature: BaselineFeature, column: ColumnProfile) -> bool:
    if feature.sketch is not None and column.is_numeric and column.sketch.count:
        base_items, _ = feature.sketch.weighted_items()
        low = min(float(base_items.min()), column.num_min)
        high = max(float(base_items.max()), column.num_max)
        edges = np.linspace(low, high if high > low else low + 1.0, BINS + 1)
        width = edges[1] - edges[0]
        for offset, (label, sketch) in enumerate((("baseline", feature.sketch), ("current", column.sketch))):
            cdf = sketch.rank(edges, inclusive=True) / max(sketch.total_weight, 1.0)
            cdf[0] = sketch.rank(edges[:1], inclusive=False)[0] / max(sketch.total_weight, 1.0)
            share = np.diff(cdf)
            axis.bar(edges[:-1] + width * (0.25 + 0.5 * offset), share, width=width * 0.45, label=label)
        axis.set_ylabel("share of values")
        return True
    if feature.categories and column.counts is not None:
        base_total = sum(feature.categories.values()) or 1.0
        curr_total = float(sum(column.counts.values())) or 1.0
        counts = column.counts
        keys = sorted(
            set(feature.categories) | set(counts),
            key=lambda k: -(feature.categories.get(k, 0.0) / base_total + counts.get(k, 0) / curr_total),
        )[:TOP_CATEGORIES]
        positions = np.arange(len(keys))
        axis.bar(positions - 0.2, [feature.categories.get(k, 0.0) / base_total for k in keys], 0.4, label="baseline")
        axis.bar(positions + 0.2, [counts.get(k, 0) / curr_total for k in keys], 0.4, label="current")
        axis.set_xticks(positions, [k[:12] for k in keys], rotation=45, fontsize=7)
        axis.set_ylabel("share of values")
        return True
    return False


def _page(rows: list[tuple[str, str, bool, list[str], str]], violations: int, items: int) -> str:
    lines = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Model Monitor drift report</title>",
        "<style>body{font-family:sans-serif} td,th{padding:4px 8px;border-bottom:1px solid #ddd}"
        " .drift{color:crimson;font-weight:bold} img{max-width:560px}</style></head><body>",
        f"<h1>Drift report</h1><p>{items} record(s) analysed; {violations} violation(s).</p>",
        "<table><tr><th>feature</th><th>distance</th><th>drift</th><th>violations</th></tr>",
    ]
    for name, distance, drifted, checks, _ in rows:
        css = " class='drift'" if drifted else ""
        lines.append(
            f"<tr><td>{html.escape(name)}</td><td>{distance}</td><td{css}>{'yes' if drifted else 'no'}</td>"
            f"<td>{html.escape(', '.join(checks))}</td></tr>"
        )
    lines.append("</table>")
    for name, _, _, _, image in rows:
        lines.append(f"<h3>{html.escape(name)}</h3><img src='{html.escape(image)}' alt='{html.escape(name)}'>")
    lines.append("</body></html>")
    return "\n".join(lines)
