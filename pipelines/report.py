"""The run report: ``reports/<execution id>/report.md`` with the step table, metrics, ROC curve and tuning chart."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pipelines.watch import StepRow, read_json

logger = logging.getLogger(__name__)


def write_report(sm: Any, s3: Any, described: dict[str, Any], rows: list[StepRow], root: Path, wall_s: float) -> Path:
    execution_arn = described["PipelineExecutionArn"]
    folder = root / execution_arn.rsplit("/", 1)[-1]
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Pipeline run `{execution_arn.split('/')[1]}`",
        "",
        f"- execution: `{execution_arn}`",
        f"- status: **{described['PipelineExecutionStatus']}**",
        f"- written: {datetime.now(tz=UTC).isoformat(timespec='seconds')}; wall time {wall_s:.1f} s",
    ]
    if described.get("FailureReason"):
        lines.append(f"- failure: {described['FailureReason']}")
    lines += ["", "| step | status | duration (s) | key metrics |", "|---|---|---|---|"]
    for row in rows:
        duration = f"{row.duration_s:.1f}" if row.duration_s is not None else "-"
        metrics = ", ".join(f"{k}={v}" for k, v in row.metrics.items())
        lines.append(f"| {row.name} | {row.status}{' (cached)' if row.cached else ''} | {duration} | {metrics} |")
    lines += _evaluation_section(sm, s3, rows, folder)
    lines += _training_section(sm, rows, folder)
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _evaluation_section(sm: Any, s3: Any, rows: list[StepRow], folder: Path) -> list[str]:
    for row in rows:
        if "ProcessingJob" not in row.metadata or "auc" not in row.metrics:
            continue
        job = sm.describe_processing_job(ProcessingJobName=row.metadata["ProcessingJob"]["Arn"].rsplit("/", 1)[-1])
        output = next(o for o in job["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == "evaluation")
        document = read_json(s3, output["S3Output"]["S3Uri"].rstrip("/") + "/evaluation.json")
        curve = document.get("roc_curve") or {}
        figure, axis = plt.subplots(figsize=(4.5, 4.5))
        axis.plot(curve.get("fpr", []), curve.get("tpr", []), label=f"model (AUC {row.metrics['auc']:.3f})")
        axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
        axis.set_xlabel("false positive rate")
        axis.set_ylabel("true positive rate")
        axis.set_title("ROC curve, test split")
        axis.legend(loc="lower right")
        figure.tight_layout()
        figure.savefig(folder / "roc.png", dpi=110)
        plt.close(figure)
        metrics = "\n".join(f"| {k} | {v} |" for k, v in row.metrics.items())
        return ["", "## Evaluation (test split)", "", "| metric | value |", "|---|---|", metrics, "", "![ROC](roc.png)"]
    return []


def _training_section(sm: Any, rows: list[StepRow], folder: Path) -> list[str]:
    for row in rows:
        if "TuningJob" in row.metadata:
            return _tuning_chart(sm, row.metadata["TuningJob"]["Arn"].rsplit("/", 1)[-1], folder)
        if "TrainingJob" in row.metadata and row.metrics:
            figure, axis = plt.subplots(figsize=(6, 3.5))
            axis.bar(list(row.metrics), list(row.metrics.values()), color="tab:blue")
            axis.set_title("final training metrics (tuning not available on this target: one training job)")
            figure.tight_layout()
            figure.savefig(folder / "training.png", dpi=110)
            plt.close(figure)
            return ["", "## Training", "", "![training metrics](training.png)"]
    return []


def _tuning_chart(sm: Any, tuning_job: str, folder: Path) -> list[str]:
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning_job, SortBy="CreationTime", SortOrder="Ascending", MaxResults=100
    )["TrainingJobSummaries"]
    values = [
        (j["TrainingJobName"], (j.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")) for j in jobs
    ]
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(range(1, len(values) + 1), [v if v is not None else float("nan") for _, v in values], marker="o")
    axis.set_xlabel("training job (launch order)")
    axis.set_ylabel("objective (validation:auc)")
    axis.set_title(f"tuning job {tuning_job}")
    figure.tight_layout()
    figure.savefig(folder / "tuning.png", dpi=110)
    plt.close(figure)
    table = "\n".join(f"| {name} | {value} |" for name, value in values)
    return ["", "## Tuning", "", "| training job | objective |", "|---|---|", table, "", "![tuning](tuning.png)"]
