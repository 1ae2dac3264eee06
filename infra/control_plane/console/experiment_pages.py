"""Experiments and Feature Store pages: an experiment's runs side by side with a metric over steps for chosen runs
(BatchGetMetrics, as Studio reads it); feature groups, their features and a record lookup (GetRecord)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Request, Response

from infra.control_plane.console.console_api import ConsoleApi, ConsoleApiError
from infra.control_plane.console.svg_charts import LineChart, line_chart

Render = Callable[..., Response]
PAGE_SIZE = 50
MAX_RUNS = 50  # runs of one experiment shown side by side
MAX_CHARTED_RUNS = 8
_X_AXES = {"step": ("IterationNumber", "IterationNumber", "step"), "time": ("Timestamp", "OneMinute", "time")}


class ExperimentPages:
    def __init__(self, api: ConsoleApi, render: Render) -> None:
        self._api = api
        self._render = render

    def pages(self) -> dict[str, Callable[..., Response]]:
        return {
            "experiments": self.experiments,
            "experiment": self.experiment,
            "feature_groups": self.feature_groups,
            "feature_group": self.feature_group,
        }

    def experiments(self, request: Request) -> Response:
        params: dict[str, Any] = {"MaxResults": PAGE_SIZE, "SortBy": "CreationTime", "SortOrder": "Descending"}
        if request.args.get("page"):
            params["NextToken"] = request.args["page"]
        page = self._api.call("ListExperiments", **params)
        return self._render(
            "experiments.html",
            section="experiments",
            experiments=page.get("ExperimentSummaries") or [],
            next_token=page.get("NextToken"),
        )

    def experiment(self, request: Request, experiment: str) -> Response:
        described = self._api.call("DescribeExperiment", ExperimentName=experiment)
        listed = self._api.list_all(
            "ListTrialComponents",
            "TrialComponentSummaries",
            limit=MAX_RUNS,
            ExperimentName=experiment,
            SortBy="CreationTime",
            SortOrder="Descending",
        )
        runs = [self._api.call("DescribeTrialComponent", TrialComponentName=c["TrialComponentName"]) for c in listed]
        parameter_names = sorted({name for run in runs for name in (run.get("Parameters") or {})})
        metric_names = sorted({str(m["MetricName"]) for run in runs for m in run.get("Metrics") or []})
        chosen = [name for name in request.args.getlist("run") if name][:MAX_CHARTED_RUNS]
        metric = request.args.get("metric") or (metric_names[0] if metric_names else "")
        axis = request.args.get("x") or "step"
        if axis not in _X_AXES:
            raise BadRequest("x must be step or time.")
        if not chosen:
            chosen = [str(run["TrialComponentName"]) for run in runs[:MAX_CHARTED_RUNS]]
        chart = self._metric_chart(runs, chosen, metric, axis) if metric else None
        return self._render(
            "experiment.html",
            section="experiments",
            experiment=described,
            runs=runs,
            parameter_names=parameter_names,
            metric_names=metric_names,
            metrics_of={str(r["TrialComponentName"]): _metrics(r) for r in runs},
            chosen=chosen,
            metric=metric,
            axis=axis,
            chart=chart,
        )

    def _metric_chart(self, runs: list[dict[str, Any]], chosen: list[str], metric: str, axis: str) -> LineChart:
        x_type, period, label = _X_AXES[axis]
        arns = {str(r["TrialComponentName"]): str(r["TrialComponentArn"]) for r in runs}
        picked = [name for name in chosen if name in arns]
        query = {"MetricName": metric, "MetricStat": "Avg", "Period": period, "XAxisType": x_type}
        queries = [{**query, "ResourceArn": arns[name]} for name in picked]
        results = self._api.batch_get_metrics(queries) if queries else []
        series = []
        for name, result in zip(picked, results, strict=False):
            xs, ys = result.get("XAxisValues") or [], result.get("MetricValues") or []
            series.append((_short_run(name), list(zip(xs, ys, strict=False))))
        return line_chart(f"{metric} by {label}", series, label, x_is_time=axis == "time")

    def feature_groups(self, request: Request) -> Response:
        params: dict[str, Any] = {"MaxResults": PAGE_SIZE, "SortBy": "CreationTime", "SortOrder": "Descending"}
        if request.args.get("page"):
            params["NextToken"] = request.args["page"]
        page = self._api.call("ListFeatureGroups", **params)
        return self._render(
            "feature_groups.html",
            section="features",
            groups=page.get("FeatureGroupSummaries") or [],
            next_token=page.get("NextToken"),
        )

    def feature_group(self, request: Request, group: str) -> Response:
        described = self._api.call("DescribeFeatureGroup", FeatureGroupName=group)
        identifier = (request.args.get("record") or "").strip()
        record, lookup_error = None, ""
        if identifier:
            try:
                record = self._api.get_record(group, identifier).get("Record") or []
            except ConsoleApiError as error:
                lookup_error = f"{error.code}: {error.message}"
        return self._render(
            "feature_group.html",
            section="features",
            group=described,
            identifier=identifier,
            record=record,
            lookup_error=lookup_error,
        )


def _metrics(run: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(m["MetricName"]): m for m in run.get("Metrics") or []}


def _short_run(name: str) -> str:
    return name.removesuffix("-aws-training-job").removesuffix("-aws-processing-job")
