"""Monitoring pages: the schedules, a schedule's executions, and one execution's results as the monitoring room wrote
them to S3: violations, the drift report (per-feature baseline and window distributions as charts), and a Clarify
execution's bias metrics and SHAP values (docs/model-monitor.md, docs/clarify.md#outputs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.control_plane.console.console_api import ConsoleApi
from infra.control_plane.console.svg_charts import BarChart, LineChart, bar_chart, line_chart

Render = Callable[..., Response]
PAGE_SIZE = 50
DRIFT_BINS = 10
TOP_CATEGORIES = 15
MAX_FEATURE_CHARTS = 50
MAX_SHAP_FEATURES = 30
DRIFT_PREFIX = "feature_baseline_drift_"
# Where the analyzer publishes a schedule's metrics (docs/model-monitor.md), by monitoring type.
METRIC_NAMESPACES = {
    "DataQuality": "aws/sagemaker/Endpoints/data-metrics",
    "ModelQuality": "aws/sagemaker/Endpoints/model-metrics",
}


class MonitoringPages:
    def __init__(self, api: ConsoleApi, render: Render) -> None:
        self._api = api
        self._render = render

    def pages(self) -> dict[str, Callable[..., Response]]:
        return {
            "monitoring": self.monitoring,
            "schedule": self.schedule,
            "monitoring_execution": self.execution,
        }

    def monitoring(self, request: Request) -> Response:
        params: dict[str, Any] = {"MaxResults": PAGE_SIZE, "SortBy": "CreationTime", "SortOrder": "Descending"}
        if request.args.get("page"):
            params["NextToken"] = request.args["page"]
        page = self._api.call("ListMonitoringSchedules", **params)
        return self._render(
            "monitoring.html",
            section="monitoring",
            schedules=page.get("MonitoringScheduleSummaries") or [],
            next_token=page.get("NextToken"),
        )

    def schedule(self, request: Request, schedule: str) -> Response:
        described = self._api.call("DescribeMonitoringSchedule", MonitoringScheduleName=schedule)
        params: dict[str, Any] = {
            "MonitoringScheduleName": schedule,
            "MaxResults": PAGE_SIZE,
            "SortBy": "ScheduledTime",
            "SortOrder": "Descending",
        }
        if request.args.get("page"):
            params["NextToken"] = request.args["page"]
        page = self._api.call("ListMonitoringExecutions", **params)
        executions = page.get("MonitoringExecutionSummaries") or []
        for summary in executions:
            summary["JobName"] = str(summary.get("ProcessingJobArn") or "").rsplit("/", 1)[-1]
        return self._render(
            "schedule.html",
            section="monitoring",
            schedule=described,
            executions=executions,
            next_token=page.get("NextToken"),
            drift_chart=self._drift_over_time(described),
        )

    def _drift_over_time(self, described: Mapping[str, Any]) -> LineChart | None:
        """Each feature's baseline drift distance per execution, as the schedule published it to CloudWatch."""
        namespace = METRIC_NAMESPACES.get(str(described.get("MonitoringType") or "DataQuality"))
        endpoint = described.get("EndpointName")
        if namespace is None or not endpoint:
            return None
        dimensions = {"Endpoint": str(endpoint), "MonitoringSchedule": str(described["MonitoringScheduleName"])}
        family = self._api.metric_family(namespace, DRIFT_PREFIX, dimensions)
        if not family:
            return None
        series = [(name.removeprefix(DRIFT_PREFIX), points) for name, points in family.items()]
        return line_chart("Baseline drift distance per feature (CloudWatch)", series, "execution time", x_is_time=True)

    def execution(self, request: Request, schedule: str, job: str) -> Response:
        described = self._api.call("DescribeProcessingJob", ProcessingJobName=job)
        output = _output_uri(described)
        baseline = _input_uri(described, "baseline")
        violations = (self._api.s3_json(f"{output}/constraint_violations.json") or {}) if output else {}
        statistics = (self._api.s3_json(f"{output}/statistics.json") or {}) if output else {}
        baseline_statistics = (self._api.s3_json(baseline) or {}) if baseline else {}
        analysis = (self._api.s3_json(f"{output}/analysis.json") or {}) if output else {}
        listed = violations.get("violations") if isinstance(violations, dict) else None
        return self._render(
            "monitoring_execution.html",
            section="monitoring",
            schedule_name=schedule,
            job=described,
            output=output,
            violations=listed if isinstance(listed, list) else [],
            has_violations_file=bool(violations),
            drift=drift_charts(baseline_statistics, statistics, listed if isinstance(listed, list) else []),
            bias=bias_tables(analysis),
            shap=shap_charts(analysis),
            drift_report=self._api.s3_keys(f"{output}/drift_report/", limit=200) if output else [],
        )


def _output_uri(described: Mapping[str, Any]) -> str:
    outputs = (described.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    for output in outputs:
        uri = (output.get("S3Output") or {}).get("S3Uri")
        if uri:
            return str(uri).rstrip("/")
    return ""


def _input_uri(described: Mapping[str, Any], name: str) -> str:
    for item in described.get("ProcessingInputs") or []:
        if item.get("InputName") == name:
            return str((item.get("S3Input") or {}).get("S3Uri") or "")
    return ""


def drift_charts(
    baseline: Mapping[str, Any], current: Mapping[str, Any], violations: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str, BarChart]]:
    """``(feature, its violations' text, chart)``: each feature's share of values per bin, baseline against window."""
    wanted = {str(f.get("name")): f for f in current.get("features") or [] if isinstance(f, dict)}
    base = {str(f.get("name")): f for f in baseline.get("features") or [] if isinstance(f, dict)}
    noted: dict[str, list[str]] = {}
    for violation in violations:
        noted.setdefault(str(violation.get("feature_name")), []).append(
            f"{violation.get('constraint_check_type')}: {violation.get('description')}"
        )
    charts = []
    for name, feature in list(wanted.items())[:MAX_FEATURE_CHARTS]:
        chart = _feature_chart(name, base.get(name) or {}, feature)
        if chart is not None:
            charts.append((name, " · ".join(noted.get(name, [])), chart))
    return charts


def _feature_chart(name: str, baseline: Mapping[str, Any], current: Mapping[str, Any]) -> BarChart | None:
    numeric = [
        ((f.get("numerical_statistics") or {}).get("distribution") or {}).get("kll", {}).get("buckets") or []
        for f in (baseline, current)
    ]
    if numeric[1]:
        edges = _edges([b for buckets in numeric for b in buckets])
        labels = [f"{edges[i]:.3g}…{edges[i + 1]:.3g}" for i in range(len(edges) - 1)]
        series = [
            (label, _rebin(buckets, edges)) for label, buckets in zip(("baseline", "window"), numeric, strict=True)
        ]
        return bar_chart(f"{name}: share of values", labels, [s for s in series if any(s[1])])
    categorical = [
        ((f.get("string_statistics") or {}).get("distribution") or {}).get("categorical", {}).get("buckets") or []
        for f in (baseline, current)
    ]
    if not categorical[1]:
        return None
    shares = [_shares(buckets) for buckets in categorical]
    values = sorted({v for s in shares for v in s}, key=lambda v: -(shares[0].get(v, 0.0) + shares[1].get(v, 0.0)))
    labels = values[:TOP_CATEGORIES]
    series = [(label, [s.get(v, 0.0) for v in labels]) for label, s in zip(("baseline", "window"), shares, strict=True)]
    return bar_chart(f"{name}: share of values", labels, [s for s in series if any(s[1])])


def _edges(buckets: Sequence[Mapping[str, Any]]) -> list[float]:
    bounds = [float(b[k]) for b in buckets for k in ("lower_bound", "upper_bound") if _number(b.get(k))]
    low, high = (min(bounds), max(bounds)) if bounds else (0.0, 1.0)
    if high <= low:
        high = low + 1.0
    return [low + (high - low) * i / DRIFT_BINS for i in range(DRIFT_BINS + 1)]


def _rebin(buckets: Sequence[Mapping[str, Any]], edges: Sequence[float]) -> list[float]:
    """Each bucket's count spread evenly over its range, summed into ``edges``' bins, as shares of the total."""
    shares = [0.0] * (len(edges) - 1)
    total = sum(float(b.get("count") or 0.0) for b in buckets if _number(b.get("count")))
    if total <= 0:
        return shares
    for bucket in buckets:
        raw = [bucket.get(key) for key in ("lower_bound", "upper_bound", "count")]
        if not all(_number(value) for value in raw):
            continue
        low, high, count = (float(value) for value in raw if value is not None)
        for index in range(len(shares)):
            a, b = edges[index], edges[index + 1]
            if high <= low:  # a point bucket (min == max)
                inside = a <= low <= b and (low < b or index == len(shares) - 1)
                shares[index] += count if inside else 0.0
                continue
            overlap = max(0.0, min(high, b) - max(low, a))
            shares[index] += count * overlap / (high - low)
    return [value / total for value in shares]


def _shares(buckets: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    counts = {str(b.get("value")): float(b.get("count") or 0.0) for b in buckets if _number(b.get("count"))}
    total = sum(counts.values())
    return {value: count / total for value, count in counts.items()} if total > 0 else {}


def bias_tables(analysis: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{stage, facet, value, metrics}`` of a Clarify ``analysis.json``'s bias blocks."""
    rows = []
    for stage, key in (("pre-training", "pre_training_bias_metrics"), ("post-training", "post_training_bias_metrics")):
        block = analysis.get(key) if isinstance(analysis, dict) else None
        if not isinstance(block, dict):
            continue
        for facet, groups in (block.get("facets") or {}).items():
            for group in groups or []:
                rows.append(
                    {
                        "stage": stage,
                        "label": block.get("label"),
                        "facet": facet,
                        "value": group.get("value_or_threshold"),
                        "metrics": group.get("metrics") or [],
                    }
                )
    return rows


def shap_charts(analysis: Mapping[str, Any]) -> list[BarChart]:
    """One bar chart of global SHAP values per explained output, largest magnitude first."""
    explanations = (analysis.get("explanations") or {}) if isinstance(analysis, dict) else {}
    kernel = explanations.get("kernel_shap") or {}
    charts = []
    for label, values in kernel.items():
        shap = (values or {}).get("global_shap_values") or {}
        ranked = sorted(((str(k), float(v)) for k, v in shap.items() if _number(v)), key=lambda kv: -abs(kv[1]))
        ranked = ranked[:MAX_SHAP_FEATURES]
        if ranked:
            bars = [("SHAP", [v for _, v in ranked])]
            charts.append(bar_chart(f"Global SHAP values ({label})", [k for k, _ in ranked], bars))
    return charts


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
