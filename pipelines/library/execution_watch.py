"""Follow a pipeline execution through ``ListPipelineExecutionSteps`` and summarise its steps (boto3 only)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

TERMINAL = {"Succeeded", "Failed", "Stopped"}


@dataclass
class StepRow:
    name: str
    status: str
    duration_s: float | None
    metadata: dict[str, Any]
    failure_reason: str | None = None
    cached: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)


def list_steps(sm: Any, execution_arn: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sm.list_pipeline_execution_steps(
            PipelineExecutionArn=execution_arn, SortOrder="Ascending", **({"NextToken": token} if token else {})
        )
        steps.extend(page["PipelineExecutionSteps"])
        token = page.get("NextToken")
        if not token:
            return steps


def follow(sm: Any, execution_arn: str, emit: Callable[[str], None], poll_seconds: float = 1.0) -> dict[str, Any]:
    """Emit one line per step status change until the execution ends; returns the final Describe response."""
    seen: dict[str, str] = {}
    started = time.monotonic()
    while True:
        described = sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        for step in list_steps(sm, execution_arn):
            status = step["StepStatus"] + (" (cache hit)" if step.get("CacheHitResult") else "")
            if seen.get(step["StepName"]) != status:
                seen[step["StepName"]] = status
                emit(f"[{time.monotonic() - started:6.1f}s] {step['StepName']:<32} {status}")
        if described["PipelineExecutionStatus"] not in ("Executing", "Stopping"):
            return dict(described)
        time.sleep(poll_seconds)


def step_rows(sm: Any, s3: Any, execution_arn: str) -> list[StepRow]:
    rows = []
    for step in list_steps(sm, execution_arn):
        start, end = step.get("StartTime"), step.get("EndTime")
        duration = (end - start).total_seconds() if isinstance(start, datetime) and isinstance(end, datetime) else None
        row = StepRow(
            name=step["StepName"],
            status=step["StepStatus"],
            duration_s=duration,
            metadata=step.get("Metadata") or {},
            failure_reason=step.get("FailureReason"),
            cached=bool(step.get("CacheHitResult")),
        )
        try:
            row.metrics = key_metrics(sm, s3, row)
        except Exception as exc:  # a report must not fail because one metric lookup did
            logger.warning("metrics of step %s: %s", row.name, exc)
        rows.append(row)
    return rows


def key_metrics(sm: Any, s3: Any, row: StepRow) -> dict[str, Any]:
    """The few numbers worth a column: metrics of training/tuning, evaluation.json, outcome, package ARN."""
    meta = row.metadata
    if "TrainingJob" in meta:
        job = sm.describe_training_job(TrainingJobName=_name(meta["TrainingJob"]["Arn"]))
        return {m["MetricName"]: round(m["Value"], 4) for m in job.get("FinalMetricDataList", [])}
    if "TuningJob" in meta:
        tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=_name(meta["TuningJob"]["Arn"]))
        best = tuning.get("BestTrainingJob") or {}
        value = (best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")
        return {
            "best_objective": round(value, 4) if value is not None else None,
            "best_job": best.get("TrainingJobName"),
        }
    if "ProcessingJob" in meta:
        return _evaluation_metrics(sm, s3, _name(meta["ProcessingJob"]["Arn"]))
    if "Condition" in meta:
        return {"outcome": meta["Condition"]["Outcome"]}
    if "RegisterModel" in meta:
        return {"model_package": meta["RegisterModel"]["Arn"].rsplit("/", 2)[-2:]}
    if "TransformJob" in meta:
        job = sm.describe_transform_job(TransformJobName=_name(meta["TransformJob"]["Arn"]))
        return {"output": job["TransformOutput"]["S3OutputPath"]}
    return {}


def _evaluation_metrics(sm: Any, s3: Any, job_name: str) -> dict[str, Any]:
    job = sm.describe_processing_job(ProcessingJobName=job_name)
    for output in job.get("ProcessingOutputConfig", {}).get("Outputs", []):
        if output["OutputName"] == "evaluation":
            document = read_json(s3, output["S3Output"]["S3Uri"].rstrip("/") + "/evaluation.json")
            metrics = document.get("binary_classification_metrics", {})
            return {name: round(float(item["value"]), 4) for name, item in metrics.items()}
    return {}


def read_json(s3: Any, uri: str) -> dict[str, Any]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    loaded: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return loaded


def _name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def summary_table(rows: list[StepRow]) -> list[str]:
    lines = [f"{'step':<32} {'status':<10} {'duration':>9}  key metrics", "-" * 100]
    for row in rows:
        duration = f"{row.duration_s:8.1f}s" if row.duration_s is not None else "        -"
        status = row.status + ("*" if row.cached else "")
        metrics = ", ".join(f"{k}={v}" for k, v in row.metrics.items())
        lines.append(f"{row.name:<32} {status:<10} {duration}  {metrics}"[:160])
    if any(row.cached for row in rows):
        lines.append("(* = cache hit: outputs reused from an earlier execution)")
    return lines
