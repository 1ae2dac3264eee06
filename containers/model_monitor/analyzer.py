"""One analyzer run: a baselining job (suggest statistics + constraints) or a monitoring execution (check a window).

Data quality, baselining: profile the dataset → ``statistics.json`` + ``constraints.json``.
Data quality, monitoring (``baseline_constraints``/``baseline_statistics`` set): profile the capture window →
``statistics.json`` + ``constraint_violations.json`` + CloudWatch metric records + the drift report.
Model quality (``analysis_type=MODEL_QUALITY``): metrics on a baseline dataset, or on captures merged with ground
truth, with the same output file names. The post-analytics script runs last, after a successful analysis.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from containers.model_monitor.config import AnalyzerConfig
from containers.model_monitor.data_quality.constraints import load_constraints, suggest_constraints
from containers.model_monitor.data_quality.statistics import DatasetProfile, load_statistics, read_json, write_json
from containers.model_monitor.data_quality.violations import CheckResult, evaluate
from containers.model_monitor.inputs.capture import (
    CaptureRecord,
    CaptureTally,
    Row,
    capture_tables,
    iter_records,
    record_rows,
)
from containers.model_monitor.inputs.readers import read_dataset
from containers.model_monitor.model_quality import quality_metrics
from containers.model_monitor.model_quality.quality_inputs import baseline_labels, monitoring_labels
from containers.model_monitor.reporting import cloudwatch
from containers.model_monitor.reporting.drift_report import write_drift_report
from containers.model_monitor.user_scripts import load_preprocessor, run_postprocessor
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["Outcome", "run"]

STATISTICS = "statistics.json"
CONSTRAINTS = "constraints.json"
VIOLATIONS = "constraint_violations.json"
_SPARK_NAME = re.compile(r"^_c\d+$")


@dataclass(frozen=True)
class Outcome:
    """How the run ended: the exit message (processing's ``ExitMessage``) and the number of violations."""

    message: str
    violations: int = 0


def run(config: AnalyzerConfig) -> Outcome:
    logger.info(
        "analyzer: %s %s, dataset %s (%s)",
        config.analysis_type,
        "monitoring" if config.is_monitoring else "baselining",
        config.dataset_source,
        config.dataset_format.kind,
    )
    config.output_path.mkdir(parents=True, exist_ok=True)
    if config.analysis_type == "MODEL_QUALITY":
        outcome = _model_quality(config)
    elif config.is_monitoring:
        outcome = _monitor_data_quality(config)
    else:
        outcome = _baseline_data_quality(config)
    if config.post_analytics_processor_script is not None:
        run_postprocessor(config.post_analytics_processor_script)
    return outcome


def _table_source(
    config: AnalyzerConfig, names: list[str] | None, tally: CaptureTally
) -> Callable[[], Iterator[pa.Table]]:
    fmt = config.dataset_format
    if fmt.kind != "capture":
        if config.record_preprocessor_script is not None:
            logger.warning(
                "record_preprocessor_script applies to captured records only; %s data is read as is", fmt.kind
            )
        return lambda: read_dataset(config.dataset_source, fmt)
    to_rows: Callable[[CaptureRecord], list[Row]]
    if config.record_preprocessor_script is not None:
        to_rows = load_preprocessor(config.record_preprocessor_script)
    else:
        to_rows = functools.partial(record_rows, index_names=fmt.capture_index_names, names=names)

    def tables() -> Iterator[pa.Table]:
        return capture_tables(
            iter_records(config.dataset_source, config.start_time, config.end_time, tally), to_rows, tally
        )

    return tables


def _profile(source: Callable[[], Iterator[pa.Table]]) -> DatasetProfile:
    profile = DatasetProfile()
    for table in source():
        profile.update(table)
    again = profile.recount_columns()
    if again:
        logger.info("second pass to count the values of %s", ", ".join(again))
        profile.recount(source(), again)
    return profile


def _baseline_data_quality(config: AnalyzerConfig) -> Outcome:
    tally = CaptureTally()
    profile = _profile(_table_source(config, None, tally))
    if profile.item_count == 0:
        raise UserError(
            f"The baseline dataset at {config.dataset_source} has no rows: nothing to suggest a baseline from. "
            "Check the baseline_dataset_input and dataset_format."
        )
    write_json(config.output_path / STATISTICS, profile.to_json())
    write_json(config.output_path / CONSTRAINTS, suggest_constraints(profile))
    logger.info("baseline over %d row(s) and %d column(s)", profile.item_count, len(profile.columns))
    return Outcome("Completed: Job completed successfully.")


def _positional_names(feature_names: list[str]) -> list[str] | None:
    """Baseline names for header-less captured CSV columns (unless the baseline itself used ``_cN`` names)."""
    if not feature_names or all(_SPARK_NAME.match(n) for n in feature_names):
        return None
    return feature_names


def _monitor_data_quality(config: AnalyzerConfig) -> Outcome:
    if config.baseline_constraints is None:
        raise UserError("A monitoring execution needs baseline_constraints (a constraints.json); it was not set.")
    global_config, constraints = load_constraints(config.baseline_constraints, config.categorical_drift_method)
    baseline = load_statistics(config.baseline_statistics)[1] if config.baseline_statistics else {}
    tally = CaptureTally()
    source = _table_source(config, _positional_names(list(constraints) or list(baseline)), tally)
    profile = _profile(source)
    logger.info(
        "capture: %d file(s), %d record(s), %d in window, %d corrupt, %d dropped by the preprocessor",
        tally.files,
        tally.records,
        tally.in_window,
        tally.corrupt,
        tally.dropped,
    )
    statistics = profile.to_json()
    write_json(config.output_path / STATISTICS, statistics)
    if profile.item_count == 0:
        write_json(config.output_path / VIOLATIONS, {"violations": []})
        window = f"[{config.start_time}, {config.end_time})"
        return Outcome(f"Completed: Job inputs had no data to analyze in the window {window}; no violations.")
    result = (
        evaluate(profile, constraints, baseline, global_config) if global_config.evaluate_constraints else CheckResult()
    )
    write_json(config.output_path / VIOLATIONS, result.to_json())
    if config.publish_cloudwatch_metrics and global_config.emit_metrics:
        _emit(
            config,
            cloudwatch.data_quality_metrics(statistics["features"], profile.item_count, result.drift, [], _now(config)),
        )
    if baseline:
        write_drift_report(config.output_path, baseline, profile, result)
    corrupt = f" {tally.corrupt} corrupt record(s) skipped." if tally.corrupt else ""
    return _violations_outcome(len(result.violations), corrupt)


def _violations_outcome(count: int, note: str = "") -> Outcome:
    if count:
        return Outcome(f"CompletedWithViolations: Job completed successfully with {count} violations.{note}", count)
    return Outcome(f"Completed: Job completed successfully with no violations.{note}")


def _now(config: AnalyzerConfig) -> datetime:
    return config.end_time or datetime.now(UTC)


def _emit(config: AnalyzerConfig, records: list[cloudwatch.MetricRecord]) -> None:
    dims = cloudwatch.dimensions(config.endpoint_name, config.schedule_name)
    for record in records:
        record["Dimensions"] = dims
    namespace = cloudwatch.namespace_for(config.cloudwatch_namespace, config.endpoint_name)
    cloudwatch.write_metrics(config.metrics_dir, namespace, records)
    cloudwatch.publish(namespace, records, config.environ)


def _model_quality(config: AnalyzerConfig) -> Outcome:
    problem = str(config.problem_type)
    tally = CaptureTally()
    if config.is_monitoring:
        labels = monitoring_labels(config, tally, config.start_time, config.end_time)
    else:
        labels = baseline_labels(config)
    truth, prediction, scores = labels.arrays(problem, config.probability_threshold)
    if truth.size == 0:
        raise UserError(f"No rows to evaluate in {config.dataset_source}; a model quality job needs labelled rows.")
    if problem == "Regression":
        metrics = quality_metrics.regression_metrics(truth, prediction)
    elif problem == "BinaryClassification":
        metrics = quality_metrics.binary_metrics(truth, prediction, scores)
    else:
        metrics = quality_metrics.multiclass_metrics(truth, prediction)
    write_json(
        config.output_path / STATISTICS, quality_metrics.statistics_document(problem, truth.size, metrics, _now(config))
    )
    if not config.is_monitoring:
        write_json(config.output_path / CONSTRAINTS, quality_metrics.suggest_constraints(problem, metrics))
        return Outcome("Completed: Job completed successfully.")
    violations: list[dict[str, str]] = []
    if config.baseline_constraints is not None:
        violations = quality_metrics.evaluate_constraints(
            read_json(config.baseline_constraints, "baseline constraints"), metrics
        )
    write_json(config.output_path / VIOLATIONS, {"violations": violations})
    if config.publish_cloudwatch_metrics:
        _emit(config, cloudwatch.model_quality_metrics(metrics, [], _now(config)))
    return _violations_outcome(len(violations))
