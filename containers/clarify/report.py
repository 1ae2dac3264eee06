"""The reports people read: ``<name>.html`` (self-contained, charts embedded as PNG) and ``<name>.pdf``.

Every metric row says what the number means in plain words and what "no bias" looks like; SHAP is a bar chart of
the global values; each PDP is a line (numerical) or bar (categorical) chart. Rendered from ``analysis.json`` only.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from containers.clarify.config import AnalysisConfig

logger = logging.getLogger(__name__)

__all__ = ["MEANINGS", "render_html", "write_reports"]

# name -> (plain-language meaning, what "no bias" looks like)
MEANINGS: dict[str, tuple[str, str]] = {
    "CI": ("How much larger the rest of the data (a) is than the group (d): (n_a − n_d)/(n_a + n_d).", "0"),
    "DPL": ("Share of positive labels in a minus the share in d.", "0; > 0 means d gets fewer positive labels"),
    "KL": ("How different the label distributions of a and d are (Kullback-Leibler, nats).", "0"),
    "JS": ("Symmetric distance between the label distributions of a and d (Jensen-Shannon).", "0"),
    "LP": ("Euclidean distance between the label distributions of a and d.", "0"),
    "TVD": ("Half the total absolute difference between the label distributions of a and d.", "0"),
    "KS": ("Largest difference in any outcome's share between a and d.", "0"),
    "CDDL": ("Does d get a larger share of rejections than of acceptances, within each subgroup?", "0"),
    "DPPL": ("Share of positive predictions in a minus the share in d.", "0; > 0 means the model favours a"),
    "DI": ("Positive-prediction rate of d divided by that of a.", "1; below 0.8 is a common warning sign"),
    "DCA": ("Observed positives per predicted positive, a minus d.", "0; > 0 means d is accepted more than it merits"),
    "DCR": ("Observed negatives per predicted negative, d minus a.", "0"),
    "SD": ("True negative rate of d minus that of a.", "0"),
    "RD": ("Recall (true positive rate) of a minus that of d.", "0; > 0 means the model finds a's positives more"),
    "DAR": ("Precision of a minus precision of d.", "0"),
    "DRR": ("Negative predictive value of d minus that of a.", "0"),
    "AD": ("Accuracy on a minus accuracy on d.", "0; > 0 means the model is less accurate for d"),
    "TE": ("False negatives per false positive, d minus a.", "0"),
    "CDDPL": ("As CDDL, with the model's predictions instead of the labels.", "0"),
    "FT": ("Share of d whose prediction would flip if they were judged like their nearest a neighbours.", "0"),
    "GE": ("How unequally the model's benefit (ŷ − y + 1) is spread over everyone.", "0"),
}


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def shap_figure(output: str, block: dict[str, Any]) -> Figure:
    values = block["global_shap_values"]
    names = sorted(values, key=lambda n: values[n])
    figure, axis = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    axis.barh(names, [values[n] for n in names], color="#2b6cb0")
    axis.set_xlabel("global SHAP value (how much the feature moves the prediction)")
    axis.set_title(f"Feature importance for {output} (expected value {block['expected_value']:.4g})")
    return figure


def pdp_figure(entry: dict[str, Any]) -> Figure:
    figure, axis = plt.subplots(figsize=(6, 3))
    values = entry["feature_values"]
    for header, series in zip(entry["label_headers"], entry["model_predictions"], strict=False):
        if entry["data_type"] == "numerical":
            axis.plot(values, series, marker="o", label=header)
        else:
            axis.bar([str(v) for v in values], series, label=header)
    axis.set_xlabel(entry["feature_name"])
    axis.set_ylabel("average prediction")
    axis.legend()
    return figure


def _value(metric: dict[str, Any]) -> str:
    if metric.get("value") is None:
        return f"not computed: {metric.get('error', '')}"
    value = metric["value"]
    return value if isinstance(value, str) else f"{value:.4f}"


def _bias_html(title: str, report: dict[str, Any]) -> list[str]:
    parts = [f"<h2>{html.escape(title)}</h2>"]
    parts.append(
        f"<p>Label <b>{html.escape(str(report['label']))}</b>; positive outcome: "
        f"<b>{html.escape(str(report['label_value_or_threshold']))}</b>. <i>d</i> is the facet group named in each "
        "table, <i>a</i> is everyone else.</p>"
    )
    for facet, groups in report["facets"].items():
        for group in groups:
            parts.append(f"<h3>Facet {html.escape(facet)} = {html.escape(str(group['value_or_threshold']))}</h3>")
            parts.append("<table><tr><th>Metric</th><th>Value</th><th>What it means</th><th>No bias</th></tr>")
            for metric in group["metrics"]:
                meaning, ideal = MEANINGS.get(metric["name"], (metric["description"], ""))
                parts.append(
                    f"<tr><td>{html.escape(metric['description'])}</td><td>{html.escape(_value(metric))}</td>"
                    f"<td>{html.escape(meaning)}</td><td>{html.escape(ideal)}</td></tr>"
                )
            parts.append("</table>")
    return parts


def _image(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}"/>'


def _explanations_html(explanations: dict[str, Any]) -> list[str]:
    parts: list[str] = []
    for output, block in explanations.get("kernel_shap", {}).items():
        parts.append(f"<h2>Which features drive the model ({html.escape(output)})</h2>")
        parts.append(
            "<p>Each bar is a feature's global SHAP value: the typical size of its push on the prediction, "
            "away from the average prediction on the baseline (the expected value).</p>"
        )
        parts.append(_image(_png(shap_figure(output, block)), f"SHAP values for {output}"))
    for entry in explanations.get("pdp", []):
        if "error" in entry:
            parts.append(f"<p>PDP for {html.escape(entry['feature_name'])}: {html.escape(entry['error'])}</p>")
            continue
        parts.append(f"<h3>How the prediction changes with {html.escape(entry['feature_name'])}</h3>")
        parts.append(_image(_png(pdp_figure(entry)), f"PDP for {entry['feature_name']}"))
    return parts


_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    "th{background:#f0f4f8}"
)


def render_html(analysis: dict[str, Any], title: str) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"]
    parts.append(f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>")
    if "pre_training_bias_metrics" in analysis:
        parts += _bias_html("Bias in the data (before training)", analysis["pre_training_bias_metrics"])
    if "post_training_bias_metrics" in analysis:
        parts += _bias_html("Bias in the model's predictions", analysis["post_training_bias_metrics"])
    parts += _explanations_html(analysis.get("explanations", {}))
    parts.append("</body></html>")
    return "\n".join(parts)


def _table_figure(title: str, report: dict[str, Any]) -> Figure:
    rows = [
        [facet, str(group["value_or_threshold"]), m["name"], _value(m)[:40]]
        for facet, groups in report["facets"].items()
        for group in groups
        for m in group["metrics"]
    ]
    figure, axis = plt.subplots(figsize=(8.3, 0.28 * len(rows) + 1.5))
    axis.axis("off")
    axis.set_title(title)
    table = axis.table(cellText=rows, colLabels=["facet", "group", "metric", "value"], loc="upper center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    return figure


def _write_pdf(analysis: dict[str, Any], path: Path) -> None:
    with PdfPages(path) as pdf:
        for key, title in (("pre_training_bias_metrics", "Data bias"), ("post_training_bias_metrics", "Model bias")):
            if key in analysis:
                figure = _table_figure(title, analysis[key])
                pdf.savefig(figure, bbox_inches="tight")
                plt.close(figure)
        for output, block in analysis.get("explanations", {}).get("kernel_shap", {}).items():
            figure = shap_figure(output, block)
            pdf.savefig(figure, bbox_inches="tight")
            plt.close(figure)


def write_reports(analysis: dict[str, Any], config: AnalysisConfig, out: Path) -> None:
    """``<name>.html`` always; ``<name>.pdf`` too (a PDF failure is logged, never fatal)."""
    report = config.report
    name = report.name if report else "report"
    title = report.title if report else "SageMaker Analysis Report"
    (out / f"{name}.html").write_text(render_html(analysis, title), encoding="utf-8")
    try:
        _write_pdf(analysis, out / f"{name}.pdf")
    except (ValueError, RuntimeError, OSError) as exc:
        logger.warning("could not render %s.pdf: %s", name, exc)
