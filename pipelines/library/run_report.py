"""The run report: ``reports/<execution id>/report.md`` with the step table, metrics, ROC curve, tuning chart, the
execution's trial components side by side (its Experiments trial: the tuning job's trainings with their
hyperparameters and final metrics), the Clarify bias metrics (with their meaning in plain words) and the global SHAP
values as a bar chart. Everything is read through boto3, so the report is the same on AWS."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pipelines.library.execution_watch import StepRow, read_json

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
    lines += _trial_components_section(sm, described)
    lines += _bias_section(s3, rows)
    lines += _shap_section(s3, rows, folder)
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


_COMPARED_RUNS = 20  # the trial's training components shown side by side (a tuning job's trainings)


def _trial_components_section(sm: Any, described: dict[str, Any]) -> list[str]:
    """The execution's trial (``PipelineExperimentConfig``): its training jobs' components side by side, one column
    each, with every hyperparameter any of them has and each metric's final value (docs/experiments.md)."""
    config = described.get("PipelineExperimentConfig") or {}
    trial = config.get("TrialName")
    if not trial:
        return []
    try:
        summaries = sm.list_trial_components(TrialName=trial, SortBy="CreationTime", SortOrder="Ascending")
    except Exception:  # a report section, never a reason to fail the run
        logger.warning("cannot list the trial components of %s for the report", trial, exc_info=True)
        return []
    names = [s["TrialComponentName"] for s in summaries["TrialComponentSummaries"]]
    runs = [sm.describe_trial_component(TrialComponentName=name) for name in names]
    trainings = [r for r in runs if str(r.get("TrialComponentName", "")).endswith("-aws-training-job")]
    lines = ["", "## Trial components", "", f"Experiment `{config.get('ExperimentName')}`, trial `{trial}`:"]
    lines += ["", "| component | status |", "|---|---|"]
    lines += [f"| {r['TrialComponentName']} | {(r.get('Status') or {}).get('PrimaryStatus', '-')} |" for r in runs]
    if trainings:
        lines += _side_by_side(trainings[:_COMPARED_RUNS])
    lines += ["", f"Compare them from a terminal: `sagestack experiments list {config.get('ExperimentName')}`."]
    return lines


def _side_by_side(runs: list[dict[str, Any]]) -> list[str]:
    parameters = sorted({k for r in runs for k in (r.get("Parameters") or {}) if not k.startswith("SageMaker.")})
    metrics = sorted({m["MetricName"] for r in runs for m in (r.get("Metrics") or [])})
    header = "| | " + " | ".join(r["TrialComponentName"].removesuffix("-aws-training-job") for r in runs) + " |"
    lines = ["", "### Training jobs side by side", "", header, "|---|" + "---|" * len(runs)]
    for name in parameters:
        cells = [_parameter(r, name) for r in runs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name in metrics:
        cells = [_final_metric(r, name) for r in runs]
        lines.append(f"| **{name}** (final) | " + " | ".join(cells) + " |")
    return lines


def _parameter(run: dict[str, Any], name: str) -> str:
    value = (run.get("Parameters") or {}).get(name)
    if not value:
        return "-"
    number = value.get("NumberValue")
    return f"{number:.4g}" if number is not None else str(value.get("StringValue", "-"))


def _final_metric(run: dict[str, Any], name: str) -> str:
    found = [m for m in run.get("Metrics") or [] if m["MetricName"] == name]
    return f"{found[0]['Last']:.4f}" if found and found[0].get("Last") is not None else "-"


# What each Clarify metric says, in plain words, and what "no bias" looks like (a = everyone else, d = the group).
BIAS_MEANINGS: dict[str, tuple[str, str]] = {
    "CI": ("how much smaller the group is than everyone else (> 0: under-represented)", "0"),
    "DPL": ("how many fewer good-risk labels the group has than everyone else", "0"),
    "KL": ("how different the group's label mix is from everyone else's (divergence)", "0"),
    "JS": ("symmetric version of KL: how different the two label mixes are", "0"),
    "LP": ("distance between the two label distributions", "0"),
    "TVD": ("half the total difference between the two label distributions", "0"),
    "KS": ("largest gap between the two label distributions", "0"),
    "CDDL": ("difference in label rates once subgroups are accounted for", "0"),
    "DPPL": ("how many fewer good-risk predictions the model gives the group", "0"),
    "DI": ("the group's rate of good-risk predictions divided by everyone else's (< 0.8 is a warning)", "1"),
    "AD": ("how much less accurate the model is for the group", "0"),
    "RD": ("how many fewer real good risks the model recognises in the group (recall gap)", "0"),
    "DAR": ("how much less precise the model's good-risk calls are for the group", "0"),
    "DRR": ("how much less reliable the model's bad-risk calls are for the group", "0"),
    "DCA": ("gap between observed and predicted acceptances, everyone else minus the group", "0"),
    "DCR": ("gap between observed and predicted rejections, group minus everyone else", "0"),
    "SD": ("difference in true negative rates", "0"),
    "TE": ("difference in the ratio of false negatives to false positives", "0"),
    "FT": ("share of the group who would be treated differently if they were like their nearest others", "0"),
    "GE": ("inequality of the model's benefit across people", "0"),
}


def _check_documents(s3: Any, rows: list[StepRow]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for row in rows:
        uri = (row.metadata.get("ClarifyCheck") or {}).get("CalculatedBaselineConstraints")
        if not uri:
            continue
        try:
            found.append((row.name, read_json(s3, uri)))
        except Exception:  # a report section, never a reason to fail the run
            logger.warning("cannot read %s for the report", uri, exc_info=True)
    return found


def _bias_section(s3: Any, rows: list[StepRow]) -> list[str]:
    lines: list[str] = []
    for step, document in _check_documents(s3, rows):
        for group, title in (("pre_training_bias_metrics", "data"), ("post_training_bias_metrics", "model")):
            block = document.get(group)
            if not block:
                continue
            lines += ["", f"## Bias in the {title} ({step})", ""]
            lines += ["| facet (group) | metric | value | what it means | no bias |", "|---|---|---|---|---|"]
            for facet, entries in (block.get("facets") or {}).items():
                for entry in entries:
                    for metric in entry.get("metrics") or []:
                        meaning, ideal = BIAS_MEANINGS.get(metric["name"], (metric.get("description", ""), "0"))
                        value = metric.get("value")
                        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
                        group_name = f"{facet} = {entry.get('value_or_threshold')}"
                        lines.append(f"| {group_name} | {metric['name']} | {shown} | {meaning} | {ideal} |")
    return lines


def _shap_section(s3: Any, rows: list[StepRow], folder: Path) -> list[str]:
    for step, document in _check_documents(s3, rows):
        shap = (document.get("explanations") or {}).get("kernel_shap") or {}
        for label, block in shap.items():
            values = sorted((block.get("global_shap_values") or {}).items(), key=lambda item: item[1])[-15:]
            if not values:
                continue
            figure, axis = plt.subplots(figsize=(6.5, 0.3 * len(values) + 1.2))
            axis.barh([name for name, _ in values], [value for _, value in values], color="tab:green")
            axis.set_xlabel("mean |SHAP value| (impact on the predicted probability of good risk)")
            axis.set_title(f"global feature importance ({label})")
            figure.tight_layout()
            figure.savefig(folder / "shap.png", dpi=110)
            plt.close(figure)
            return [
                "",
                f"## What drives the model ({step}, Kernel SHAP)",
                "",
                "Longer bars: features that move the predicted risk more, on average over the test split.",
                "",
                "![global SHAP values](shap.png)",
            ]
    return []
