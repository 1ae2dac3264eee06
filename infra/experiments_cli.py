"""``sagestack experiments list|show|compare``: runs with their parameters and final metrics, and a metric chart.

Reads through boto3 only (Search, DescribeTrialComponent, sagemaker-metrics BatchGetMetrics), so it works the same
against the local stack and against AWS (docs/experiments.md#compare-from-the-terminal).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from infra.config import StackSettings

Clients = Callable[[str], Any]


def default_clients(settings: StackSettings, credentials: tuple[str, str]) -> Clients:
    """boto3 clients for the stack (or for whatever ``AWS_ENDPOINT_URL`` names, e.g. after ``sagestack env``)."""
    import boto3

    def client(service: str) -> Any:
        if os.environ.get("AWS_ENDPOINT_URL"):
            return boto3.client(service)
        return boto3.client(
            service,
            endpoint_url=settings.url,
            region_name=settings.region,
            aws_access_key_id=credentials[0],
            aws_secret_access_key=credentials[1],
        )

    return client


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sagestack experiments", description="Compare experiment runs")
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="experiments, or the runs (trial components) of one experiment")
    listing.add_argument("experiment", nargs="?")
    show = sub.add_parser("show", help="one run: parameters, artifacts, metric summaries")
    show.add_argument("run", help="trial component name")
    compare = sub.add_parser("compare", help="runs side by side, and a chart of a metric over steps")
    compare.add_argument("experiment")
    compare.add_argument("--runs", help="comma-separated trial component names (default: all of the experiment)")
    compare.add_argument("--metric", help="the metric to chart")
    compare.add_argument("--chart", type=Path, help="where to write the chart (PNG; default <metric>.png)")
    return parser.parse_args(argv)


def run(argv: Sequence[str], clients: Clients, out: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    sm = clients("sagemaker")
    if args.action == "list" and not args.experiment:
        rows = [
            [r["Experiment"]["ExperimentName"], str(r["Experiment"]["CreationTime"])[:19]]
            for r in _search(sm, "Experiment", None)
        ]
        out(table(["experiment", "created"], rows))
        return 0
    if args.action == "show":
        return _show(sm.describe_trial_component(TrialComponentName=args.run), out)
    components = [r["TrialComponent"] for r in _search(sm, "ExperimentTrialComponent", args.experiment)]
    if getattr(args, "runs", None):
        wanted = args.runs.split(",")
        components = [c for c in components if c["TrialComponentName"] in wanted]
    out(runs_table(components))
    if args.action == "compare" and args.metric:
        chart = args.chart or Path(f"{args.metric.replace(':', '_').replace('/', '_')}.png")
        series = {c["TrialComponentName"]: _series(clients, c, args.metric) for c in components}
        write_chart(series, args.metric, chart)
        out(f"chart of {args.metric} over steps for {len(series)} run(s): {chart}")
    return 0


def _search(sm: Any, resource: str, experiment: str | None) -> list[dict[str, Any]]:
    request: dict[str, Any] = {"Resource": resource, "SortBy": "CreationTime", "SortOrder": "Ascending"}
    if experiment:
        request["SearchExpression"] = {
            "Filters": [{"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": experiment}]
        }
    results: list[dict[str, Any]] = []
    for page in sm.get_paginator("search").paginate(**request):
        results.extend(page["Results"])
    return results


def _value(parameter: Mapping[str, Any]) -> str:
    value = parameter.get("NumberValue", parameter.get("StringValue"))
    return f"{value:g}" if isinstance(value, float) else str(value)


def runs_table(components: Sequence[Mapping[str, Any]]) -> str:
    """One row per run: name, status, every parameter any run has, every metric's last value."""
    parameters = sorted({p for c in components for p in c.get("Parameters") or {} if not p.startswith("SageMaker.")})
    metrics = sorted({m["MetricName"] for c in components for m in c.get("Metrics") or []})
    rows = []
    for component in components:
        params = component.get("Parameters") or {}
        finals = {m["MetricName"]: m.get("Last") for m in component.get("Metrics") or []}
        rows.append(
            [component["TrialComponentName"], (component.get("Status") or {}).get("PrimaryStatus", "")]
            + [_value(params[p]) if p in params else "" for p in parameters]
            + [f"{finals[m]:.4g}" if finals.get(m) is not None else "" for m in metrics]
        )
    return table(["run", "status", *parameters, *metrics], rows)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def _show(component: Mapping[str, Any], out: Callable[[str], None]) -> int:
    out(f"run {component['TrialComponentName']}  status {(component.get('Status') or {}).get('PrimaryStatus', '')}")
    if component.get("Source"):
        out(f"source {component['Source']['SourceArn']}")
    params = component.get("Parameters") or {}
    out(table(["parameter", "value"], [[k, _value(v)] for k, v in sorted(params.items())]))
    for kind in ("InputArtifacts", "OutputArtifacts"):
        artifacts = component.get(kind) or {}
        out(table([kind, "value"], [[k, str(v.get("Value"))] for k, v in sorted(artifacts.items())]))
    stats = ("Last", "Min", "Max", "Avg", "Count")
    rows = [[m["MetricName"], *(f"{m.get(s, math.nan):.4g}" for s in stats)] for m in component.get("Metrics") or []]
    out(table(["metric", *stats], rows))
    return 0


def _series(clients: Clients, component: Mapping[str, Any], metric: str) -> tuple[list[float], list[float]]:
    query = {
        "MetricName": metric,
        "ResourceArn": component["TrialComponentArn"],
        "MetricStat": "Avg",
        "Period": "IterationNumber",
        "XAxisType": "IterationNumber",
    }
    [result] = clients("sagemaker-metrics").batch_get_metrics(MetricQueries=[query])["MetricQueryResults"]
    return list(result.get("XAxisValues") or []), list(result.get("MetricValues") or [])


def write_chart(series: Mapping[str, tuple[list[float], list[float]]], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for name, (steps, values) in series.items():
        if steps:
            axes.plot(steps, values, marker="o", label=name)
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} over steps")
    if any(steps for steps, _ in series.values()):
        axes.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
