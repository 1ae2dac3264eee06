"""Job pages: paginated lists with status filters; a job's details, its logs streaming and its metric series as
charts (read from its CloudWatch Logs with its ``MetricDefinitions``, as SageMaker does); a tuning job's objective over
its training jobs with the best one marked."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.wrappers import Request, Response

from infra.control_plane.console.console_api import MAX_LOG_EVENTS, MAX_SCANNED_LOG_EVENTS, ConsoleApi
from infra.control_plane.console.svg_charts import LineChart, line_chart
from infra.control_plane.training.builtin_metrics import escape_control_chars

Render = Callable[..., Response]
PAGE_SIZE = 50
TERMINAL_JOB_STATUSES = {"Completed", "Failed", "Stopped"}
_LEADING_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class JobKind:
    """How one job family is listed and described through the API."""

    title: str
    list_operation: str
    list_key: str
    describe_operation: str
    name_key: str
    status_key: str
    end_key: str
    statuses: tuple[str, ...]
    log_group: str | None


_JOB_STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
JOB_KINDS = {
    "training": JobKind(
        "Training", "ListTrainingJobs", "TrainingJobSummaries", "DescribeTrainingJob", "TrainingJobName",
        "TrainingJobStatus", "TrainingEndTime", _JOB_STATUSES, "/aws/sagemaker/TrainingJobs",
    ),
    "processing": JobKind(
        "Processing", "ListProcessingJobs", "ProcessingJobSummaries", "DescribeProcessingJob", "ProcessingJobName",
        "ProcessingJobStatus", "ProcessingEndTime", _JOB_STATUSES, "/aws/sagemaker/ProcessingJobs",
    ),
    "transform": JobKind(
        "Transform", "ListTransformJobs", "TransformJobSummaries", "DescribeTransformJob", "TransformJobName",
        "TransformJobStatus", "TransformEndTime", _JOB_STATUSES, "/aws/sagemaker/TransformJobs",
    ),
    "tuning": JobKind(
        "Tuning", "ListHyperParameterTuningJobs", "HyperParameterTuningJobSummaries",
        "DescribeHyperParameterTuningJob", "HyperParameterTuningJobName", "HyperParameterTuningJobStatus",
        "HyperParameterTuningEndTime", _JOB_STATUSES, None,
    ),
}  # fmt: skip


class JobPages:
    def __init__(self, api: ConsoleApi, render: Render) -> None:
        self._api = api
        self._render = render

    def pages(self) -> dict[str, Callable[..., Response]]:
        return {
            "jobs_home": lambda request: Response("", status=303, headers={"Location": "/console/jobs/training"}),
            "jobs": self.jobs,
            "job": self.job,
            "job_logs": self.job_logs,
            "job_metrics": self.job_metrics,
        }

    def jobs(self, request: Request, kind: str) -> Response:
        spec = job_kind(kind)
        status = request.args.get("status") or ""
        if status and status not in spec.statuses:
            raise BadRequest(f"Status {status!r} is not one of {', '.join(spec.statuses)}.")
        params: dict[str, Any] = {"MaxResults": PAGE_SIZE, "SortBy": "CreationTime", "SortOrder": "Descending"}
        if status:
            params["StatusEquals"] = status
        token = request.args.get("page")
        if token:
            params["NextToken"] = token
        page = self._api.call(spec.list_operation, **params)
        return self._render(
            "jobs.html",
            section="jobs",
            kind=kind,
            kinds=JOB_KINDS,
            spec=spec,
            status_filter=status,
            jobs=page.get(spec.list_key) or [],
            next_token=page.get("NextToken"),
        )

    def job(self, request: Request, kind: str, name: str) -> Response:
        spec = job_kind(kind)
        described = self._api.call(spec.describe_operation, **{spec.name_key: name})
        logs = self._api.log_events(spec.log_group, f"{name}/") if spec.log_group else []
        context: dict[str, Any] = {}
        if kind == "training":
            context["charts"] = self._metric_charts(described)
        if kind == "tuning":
            context["tuning"] = self._tuning_objective(name, described)
        return self._render(
            "job.html",
            section="jobs",
            kind=kind,
            spec=spec,
            job=described,
            name=name,
            metrics=described.get("FinalMetricDataList") or [],
            hyperparameters=described.get("HyperParameters") or {},
            logs=logs,
            log_cursor=log_cursor(logs),
            terminal=str(described.get(spec.status_key)) in TERMINAL_JOB_STATUSES,
            **context,
        )

    def job_logs(self, request: Request, kind: str, name: str) -> Response:
        """Log events at or after ``after`` (epoch millis) and the job's status: what ``console.js`` streams."""
        spec = job_kind(kind)
        if spec.log_group is None:
            raise NotFound(f"{spec.title} jobs have no log group.")
        try:
            after = int(request.args.get("after") or 0)
        except ValueError as error:
            raise BadRequest("after must be epoch milliseconds.") from error
        described = self._api.call(spec.describe_operation, **{spec.name_key: name})
        events = [e for e in self._api.log_events(spec.log_group, f"{name}/", MAX_SCANNED_LOG_EVENTS) if e[1] >= after]
        status = str(described.get(spec.status_key))
        body = {
            "status": status,
            "terminal": status in TERMINAL_JOB_STATUSES,
            "events": [{"stream": s, "timestamp": t, "message": m} for s, t, m in events[:MAX_LOG_EVENTS]],
        }
        return Response(json.dumps(body), content_type="application/json")

    def job_metrics(self, request: Request, kind: str, name: str) -> Response:
        """The charts alone (an HTML fragment), refreshed by ``console.js`` while the job runs."""
        if kind != "training":
            raise NotFound("Metric series are drawn for training jobs.")
        described = self._api.call("DescribeTrainingJob", TrainingJobName=name)
        response = self._render("job_charts.html", charts=self._metric_charts(described))
        response.headers["X-Job-Terminal"] = str(str(described.get("TrainingJobStatus")) in TERMINAL_JOB_STATUSES)
        return response

    def _metric_charts(self, described: Mapping[str, Any]) -> list[LineChart]:
        definitions = (described.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
        name = str(described.get("TrainingJobName"))
        events = self._api.log_events("/aws/sagemaker/TrainingJobs", f"{name}/", MAX_SCANNED_LOG_EVENTS)
        series = metric_series([(t / 1000.0, m) for _, t, m in events], definitions)
        return [_series_chart(metric, points) for metric, points in series.items()]

    def _tuning_objective(self, name: str, described: Mapping[str, Any]) -> dict[str, Any]:
        trainings = self._api.list_all(
            "ListTrainingJobsForHyperParameterTuningJob",
            "TrainingJobSummaries",
            limit=500,
            HyperParameterTuningJobName=name,
            SortBy="CreationTime",
            SortOrder="Ascending",
        )
        objective = (described.get("HyperParameterTuningJobConfig") or {}).get("HyperParameterTuningJobObjective") or {}
        best = (described.get("BestTrainingJob") or {}).get("TrainingJobName")
        points, marked = [], []
        for index, job in enumerate(trainings, start=1):
            value = (job.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")
            if isinstance(value, int | float):
                points.append((float(index), float(value)))
                if job.get("TrainingJobName") == best:
                    marked.append((float(index), float(value)))
        title = f"{objective.get('MetricName', 'objective')} ({objective.get('Type', '')}) by training job"
        chart = line_chart(title, [("objective", points)], "training job (in creation order)", marked=marked)
        return {"chart": chart, "trainings": trainings, "best": best, "objective": objective}


def _series_chart(metric: str, points: list[tuple[float, float]]) -> LineChart:
    """Over time; by the order the values were logged when several share one second (a fast job)."""
    if len({int(t) for t, _ in points}) == len(points):
        return line_chart(metric, [(metric, points)], "time", x_is_time=True)
    ordered = [(float(index), value) for index, (_, value) in enumerate(points, start=1)]
    return line_chart(metric, [(metric, ordered)], "value logged (in order)")


def metric_series(
    lines: Sequence[tuple[float, str]], definitions: Sequence[Mapping[str, Any]]
) -> dict[str, list[tuple[float, float]]]:
    """Every value each ``MetricDefinitions`` regex captures in ``(epoch seconds, line)`` log lines, in order.

    Lines are matched as SageMaker's log pipeline shows them (control characters rsyslog-escaped), like the job's final
    metrics (docs/local-stack.md).
    """
    compiled = []
    for definition in definitions:
        try:
            compiled.append((str(definition["Name"]), re.compile(str(definition["Regex"]))))
        except (KeyError, re.error):
            continue
    found: dict[str, list[tuple[float, float]]] = {}
    for when, line in sorted(lines, key=lambda item: item[0]):
        escaped = escape_control_chars(line)
        for name, pattern in compiled:
            match = pattern.search(escaped) or (pattern.search(line) if escaped != line else None)
            if match is None or not match.groups() or match.group(1) is None:
                continue
            number = _LEADING_FLOAT.match(match.group(1))
            if number is not None:
                found.setdefault(name, []).append((when, float(number.group(0))))
    return found


def log_cursor(events: Sequence[tuple[str, int, str]]) -> tuple[int, int]:
    """Where the page's logs end: the last event's time (millis) and how many shown events carry that time."""
    if not events:
        return 0, 0
    last = events[-1][1]
    return last, sum(1 for event in events if event[1] == last)


def job_kind(kind: str) -> JobKind:
    spec = JOB_KINDS.get(kind)
    if spec is None:
        raise NotFound(f"No job kind {kind!r}: training, processing, transform or tuning.")
    return spec
