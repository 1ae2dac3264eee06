"""The monitor demo's output: the violations on the terminal and ``reports/monitor-<ts>/report.md``.

Each run's monitoring output (``statistics.json``, ``constraint_violations.json`` and the analyzer's
``drift_report/`` with one PNG per feature, baseline versus now) is downloaded under ``<label>/`` next to the
report, which links the HTML pages and shows the plots of the features that drifted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate


@dataclass
class RunResult:
    label: str
    schedule: str
    status: str
    failure: str | None = None
    window: tuple[str, str] = ("?", "?")
    output_uri: str | None = None
    exit_message: str = ""
    violations: list[dict[str, str]] = field(default_factory=list)
    statistics: dict[str, Any] | None = None

    @property
    def items(self) -> int:
        return int(((self.statistics or {}).get("dataset") or {}).get("item_count", 0))

    @property
    def drifted_features(self) -> list[str]:
        return sorted(
            {v["feature_name"] for v in self.violations if v.get("constraint_check_type") == "baseline_drift_check"}
        )


def download_prefix(s3: Any, uri: str, target: Path) -> list[Path]:
    """Every object under ``uri`` into ``target``, keeping the relative layout."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/") + "/"
    written = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :]
            if not relative or ".." in Path(relative).parts:
                continue
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(path))
            written.append(path)
    return written


def print_violations(results: list[RunResult], say: Callable[[str], None]) -> None:
    for result in results:
        say(f"\n{result.label} traffic: {result.status}, {result.items} rows, {len(result.violations)} violation(s)")
        if result.violations:
            rows = [
                (v.get("feature_name", v.get("metric_name", "")), v["constraint_check_type"], _short(v["description"]))
                for v in result.violations
            ]
            say(tabulate(rows, headers=["feature", "check", "description"]))


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_report(
    folder: Path, endpoint: str, notes: Mapping[str, str], results: list[RunResult], metrics: Mapping[str, float]
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Model Monitor: endpoint `{endpoint}`",
        "",
        f"- written {datetime.now(tz=UTC).isoformat(timespec='seconds')}",
        *[f"- {key}: `{value}`" for key, value in notes.items()],
        "- baseline: the model's training split with the model's scores "
        "([baseline.csv](baseline.csv), [statistics](baseline/statistics.json), "
        "[constraints](baseline/constraints.json) as suggested, "
        "[as reviewed](baseline-reviewed/constraints.json))",
        "",
        "| traffic | schedule | window | status | rows | violations | drift report |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        page = f"[{r.label}/drift_report/index.html]({r.label}/drift_report/index.html)"
        has_page = (folder / r.label / "drift_report" / "index.html").exists()
        lines.append(
            f"| {r.label} | `{r.schedule}` | {r.window[0]} → {r.window[1]} | {r.status} | {r.items} "
            f"| {len(r.violations)} | {page if has_page else '-'} |"
        )
    for r in results:
        lines += _run_section(folder, r)
    if metrics:
        lines += [
            "",
            "## CloudWatch",
            "",
            "`feature_baseline_drift_<feature>` (namespace "
            "`aws/sagemaker/Endpoints/data-metrics`) read back for the drifted run:",
            "",
        ]
        lines += ["| feature | distance |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run_section(folder: Path, result: RunResult) -> list[str]:
    lines = ["", f"## {result.label.capitalize()} traffic", ""]
    if result.failure:
        lines.append(f"Failed: {result.failure}")
    if result.exit_message:
        lines.append(f"Analyzer: {result.exit_message}")
    if not result.violations:
        lines += ["", "No violations."]
        return lines
    lines += ["", "| feature | check | description |", "|---|---|---|"]
    lines += [
        f"| {v.get('feature_name', '')} | {v['constraint_check_type']} | {_short(v['description'], 160)} |"
        for v in result.violations
    ]
    plots = [
        (name, f"{result.label}/drift_report/{_safe(name)}.png")
        for name in result.drifted_features
        if (folder / result.label / "drift_report" / f"{_safe(name)}.png").exists()
    ]
    if plots:
        lines += ["", "Features whose distribution drifted (baseline versus this window):", ""]
        lines += [f"![{name}]({image})" for name, image in plots]
    return lines


def _safe(name: str) -> str:
    """The analyzer's plot file name for a feature (``containers/model_monitor/reporting/drift_report.py``)."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "feature"
