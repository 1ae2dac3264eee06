"""The monitor demo's steps, in the order ``pipelines.commands.monitor`` runs them (:func:`demo`): check the endpoint,
score the training split by batch transform, suggest and review a baseline, then for normal and drifted traffic send
it and run a one-time (``NOW``) monitoring schedule over exactly its window; finally read back the drift distances
published to CloudWatch. Only boto3 and the SageMaker SDK talk to SageMaker.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pipelines.library.monitor_demo import monitor_data as credit
from pipelines.library.monitor_demo.monitor_report import RunResult, download_prefix
from pipelines.library.run_settings import RunSettings

logger = logging.getLogger(__name__)

BATCH_ROWS = 10  # rows per request: one capture record holds ten rows (the analyzer splits them)
_POLL_SECONDS = 1.0
_TIMEOUT_SECONDS = 1800.0
_WINDOW_MARGIN_SECONDS = 5


class MonitorError(RuntimeError):
    """A step of the demo could not run; the message says what to do."""


@dataclass
class Context:
    settings: RunSettings
    session: Any  # sagemaker.Session
    sm: Any
    runtime: Any
    s3: Any
    endpoint: str
    bucket: str
    pipeline: str  # the pipeline whose feature splits are the baseline and the traffic
    prefix: str  # s3 prefix of this run's files
    folder: Path  # local report folder
    notes: dict[str, str] = field(default_factory=dict)


def check_endpoint(sm: Any, endpoint: str) -> dict[str, Any]:
    try:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        raise MonitorError(f"Endpoint {endpoint} not found ({exc}): run `make deploy` first.") from exc
    if described["EndpointStatus"] != "InService":
        raise MonitorError(f"Endpoint {endpoint} is {described['EndpointStatus']}: wait for it or run `make deploy`.")
    if not (described.get("DataCaptureConfig") or {}).get("EnableCapture"):
        raise MonitorError(f"Endpoint {endpoint} does not capture data: run `make deploy` (it enables data capture).")
    return described


def score_training_split(ctx: Context, model_name: str, train: Any) -> list[float]:
    """The deployed model's scores for the training rows, by batch transform (no endpoint traffic)."""
    from sagemaker.transformer import Transformer

    features = credit.csv_lines(train.drop(columns=[credit.LABEL]))
    key = f"{ctx.prefix}/train-features/train.csv"
    ctx.s3.put_object(Bucket=ctx.bucket, Key=key, Body=("\n".join(features) + "\n").encode())
    job_name = f"{ctx.endpoint}-baseline-scores-{stamp()}"
    transformer = Transformer(
        model_name=model_name,
        instance_count=1,
        instance_type=ctx.settings.conf.instance_types["training"],
        accept="text/csv",
        assemble_with="Line",
        output_path=f"s3://{ctx.bucket}/{ctx.prefix}/train-scores",
        sagemaker_session=ctx.session,
    )
    transformer.transform(
        f"s3://{ctx.bucket}/{key}", content_type="text/csv", split_type="Line", job_name=job_name, wait=False
    )
    described = _wait(lambda: ctx.sm.describe_transform_job(TransformJobName=job_name), "TransformJobStatus")
    if described["TransformJobStatus"] != "Completed":
        raise MonitorError(f"Scoring the training split failed: {described.get('FailureReason')}")
    body = ctx.s3.get_object(Bucket=ctx.bucket, Key=f"{ctx.prefix}/train-scores/train.csv.out")["Body"].read()
    scores = [float(line) for line in body.decode().splitlines() if line.strip()]
    if len(scores) != len(features):
        raise MonitorError(f"The batch transform scored {len(scores)} of {len(features)} training rows.")
    return scores


def suggest_baseline(ctx: Context, baseline_csv: Path) -> Any:
    from sagemaker.model_monitor import DefaultModelMonitor
    from sagemaker.model_monitor.dataset_format import DatasetFormat

    monitor = _monitor(ctx)
    job_name = f"{ctx.endpoint}-baseline-{stamp()}"
    monitor.suggest_baseline(
        baseline_dataset=str(baseline_csv),
        dataset_format=DatasetFormat.csv(header=True),
        output_s3_uri=f"s3://{ctx.bucket}/{ctx.prefix}/baseline",
        job_name=job_name,
        wait=False,
        logs=False,
    )
    described = _wait(lambda: ctx.sm.describe_processing_job(ProcessingJobName=job_name), "ProcessingJobStatus")
    if described["ProcessingJobStatus"] != "Completed":
        raise MonitorError(f"The baselining job {job_name} failed: {described.get('FailureReason')}")
    ctx.notes["baseline job"] = job_name
    assert isinstance(monitor, DefaultModelMonitor)
    return monitor


def review_constraints(ctx: Context, baseline: Any, continuous: list[str]) -> str:
    """Review the suggested constraints as a user would: a number with many values (age, amounts) is not a
    category, so its suggested ``domains`` (categorical_values_check) are dropped. Returns the reviewed file's URI."""
    document = baseline.suggested_constraints().body_dict
    dropped = []
    for feature in document.get("features", []):
        if feature["name"] in continuous and (feature.get("string_constraints") or {}).pop("domains", None):
            dropped.append(feature["name"])
            if not feature["string_constraints"]:
                del feature["string_constraints"]
    key = f"{ctx.prefix}/baseline-reviewed/constraints.json"
    ctx.s3.put_object(Bucket=ctx.bucket, Key=key, Body=json.dumps(document, indent=2).encode())
    if dropped:
        ctx.notes["constraints reviewed"] = f"categorical domains dropped for {', '.join(dropped)} (continuous numbers)"
    return f"s3://{ctx.bucket}/{key}"


def _monitor(ctx: Context) -> Any:
    from sagemaker.model_monitor import DefaultModelMonitor

    return DefaultModelMonitor(
        role=ctx.settings.role,
        instance_count=1,
        instance_type=ctx.settings.conf.instance_types["monitor"],
        volume_size_in_gb=5,
        max_runtime_in_seconds=1800,
        sagemaker_session=ctx.session,
    )


def send(ctx: Context, lines: list[str]) -> int:
    """Invoke the endpoint with ``BATCH_ROWS`` rows a request; returns the number of rows scored."""
    scored = 0
    for start in range(0, len(lines), BATCH_ROWS):
        body = "\n".join(lines[start : start + BATCH_ROWS]) + "\n"
        answer = ctx.runtime.invoke_endpoint(EndpointName=ctx.endpoint, Body=body.encode(), ContentType="text/csv")
        scored += len([line for line in answer["Body"].read().decode().splitlines() if line.strip()])
    return scored


def run_monitor(ctx: Context, baseline: Any, constraints: str, label: str, since: datetime) -> RunResult:
    """A one-time (NOW) schedule over ``[since, now)``; waits for its execution and reads its outputs."""
    from sagemaker.model_monitor import CronExpressionGenerator

    monitor = _monitor(ctx)
    schedule = f"{ctx.endpoint}-{label}-{stamp()}"
    statistics = baseline.baseline_statistics()
    seconds = _window_seconds(since)
    monitor.create_monitoring_schedule(
        monitor_schedule_name=schedule,
        endpoint_input=ctx.endpoint,
        output_s3_uri=f"s3://{ctx.bucket}/{ctx.prefix}/reports",
        statistics=statistics,
        constraints=constraints,
        schedule_cron_expression=CronExpressionGenerator.now(),
        data_analysis_start_time=f"-PT{seconds}S",
        data_analysis_end_time="-PT0S",
        enable_cloudwatch_metrics=True,
    )
    try:
        summary = _wait(
            lambda: _last_execution(monitor), "MonitoringExecutionStatus", running=("Pending", "InProgress")
        )
        result = RunResult(label=label, schedule=schedule, status=summary["MonitoringExecutionStatus"])
        result.failure = summary.get("FailureReason")
        if summary.get("ProcessingJobArn"):
            job = ctx.sm.describe_processing_job(ProcessingJobName=summary["ProcessingJobArn"].rsplit("/", 1)[-1])
            result.window = (job["Environment"].get("start_time", "?"), job["Environment"].get("end_time", "?"))
            result.output_uri = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
            result.exit_message = job.get("ExitMessage", "")
        if result.output_uri and result.status.startswith("Completed"):
            violations = monitor.latest_monitoring_constraint_violations()
            result.violations = list(violations.body_dict.get("violations", [])) if violations else []
            statistics = monitor.latest_monitoring_statistics()
            result.statistics = statistics.body_dict if statistics else None
            download_prefix(ctx.s3, result.output_uri, ctx.folder / label)
        return result
    finally:
        monitor.delete_monitoring_schedule()


def _last_execution(monitor: Any) -> dict[str, Any]:
    summary: dict[str, Any] = monitor.describe_schedule().get("LastMonitoringExecutionSummary") or {}
    return summary or {"MonitoringExecutionStatus": "Pending"}


def _wait(describe: Any, key: str, running: tuple[str, ...] = ("InProgress", "Stopping")) -> dict[str, Any]:
    deadline = time.monotonic() + _TIMEOUT_SECONDS
    while True:
        described: dict[str, Any] = describe()
        if described[key] not in running:
            return described
        if time.monotonic() > deadline:
            raise MonitorError(f"Still {described[key]} after {_TIMEOUT_SECONDS:.0f} s.")
        time.sleep(_POLL_SECONDS)


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def demo(ctx: Context, say: Any) -> list[RunResult]:
    endpoint = check_endpoint(ctx.sm, ctx.endpoint)
    config = ctx.sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model_name = config["ProductionVariants"][0]["ModelName"]
    ctx.notes.update(model=model_name, capture=endpoint["DataCaptureConfig"].get("DestinationS3Uri", ""))
    splits = credit.S3Splits(ctx.s3, ctx.bucket, ctx.pipeline)
    data = credit.load_splits(splits)
    ctx.notes["training split"] = splits.describe(credit.TRAIN_FOLDER)
    ctx.notes["normal traffic"] = f"the test split's rows as they are ({splits.describe(credit.TEST_FOLDER)})"
    ctx.notes["drifted traffic"] = f"the same rows with {credit.DRIFT}"
    ctx.folder.mkdir(parents=True, exist_ok=True)

    say(f"==> scoring the training split ({len(data.train)} rows) with {model_name} (batch transform)")
    baseline_csv = ctx.folder / "baseline.csv"
    credit.baseline_frame(data.train, score_training_split(ctx, model_name, data.train)).to_csv(
        baseline_csv, index=False
    )
    say("==> suggesting a baseline (DefaultModelMonitor.suggest_baseline)")
    baseline = suggest_baseline(ctx, baseline_csv)
    download_prefix(ctx.s3, f"s3://{ctx.bucket}/{ctx.prefix}/baseline", ctx.folder / "baseline")
    constraints = review_constraints(ctx, baseline, credit.continuous_columns(data.train))
    download_prefix(ctx.s3, constraints.rsplit("/", 1)[0], ctx.folder / "baseline-reviewed")

    results: list[RunResult] = []
    last_traffic = datetime.min.replace(tzinfo=UTC)  # earlier traffic (make deploy's test row) predates the baseline
    for label, raw in (("normal", data.holdout_raw), ("drifted", credit.drifted(data.holdout_raw))):
        lines = credit.csv_lines(credit.encode(raw, data.columns))
        # the windows must not overlap: the previous traffic ends more than the window margin before this one
        time.sleep(max(0.0, _WINDOW_MARGIN_SECONDS + 1 - (datetime.now(UTC) - last_traffic).total_seconds()))
        since = datetime.now(UTC)
        say(
            f"==> sending {len(lines)} {label} rows to {ctx.endpoint}"
            + (f" ({credit.DRIFT})" if label == "drifted" else "")
        )
        send(ctx, lines)
        last_traffic = datetime.now(UTC)
        say(f"==> monitoring the {label} traffic (a NOW schedule over the last {_window_seconds(since)} s)")
        result = run_monitor(ctx, baseline, constraints, label, since)
        say(f"    {result.exit_message or result.failure or result.status}")
        results.append(result)
    return results


def _window_seconds(since: datetime) -> int:
    """How far back the window starts: ``since`` plus a margin for the clock between this call and the schedule's
    creation (the traffic of the previous run ends earlier than that: see ``demo``)."""
    return math.ceil((datetime.now(UTC) - since).total_seconds()) + _WINDOW_MARGIN_SECONDS


def cloudwatch_drift(ctx: Context, results: list[RunResult]) -> dict[str, float]:
    """The drift distances the drifted run published to CloudWatch, read back (feature -> value)."""
    drifted = next((r for r in results if r.label == "drifted"), None)
    if drifted is None:
        return {}
    features = sorted(
        {v["feature_name"] for v in drifted.violations if v["constraint_check_type"] == "baseline_drift_check"}
    )
    client = ctx.session.boto_session.client("cloudwatch")
    now = datetime.now(UTC)
    found: dict[str, float] = {}
    for feature in features:
        try:
            points = client.get_metric_statistics(
                Namespace="aws/sagemaker/Endpoints/data-metrics",
                MetricName=f"feature_baseline_drift_{feature}",
                Dimensions=[
                    {"Name": "Endpoint", "Value": ctx.endpoint},
                    {"Name": "MonitoringSchedule", "Value": drifted.schedule},
                ],
                StartTime=now - timedelta(hours=2),
                EndTime=now + timedelta(minutes=10),
                Period=3 * 3600,
                Statistics=["Maximum"],
            )["Datapoints"]
        except ClientError as exc:
            logger.warning("CloudWatch read failed: %s", exc)
            return found
        if points:
            found[feature] = max(p["Maximum"] for p in points)
    return found
