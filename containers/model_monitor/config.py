"""The analyzer's configuration: the environment variables of docs/reference/model-monitor-files.md#job-environment,
read once into a frozen dataclass.

Paths in the environment are container paths (``/opt/ml/processing/...``). When ``SAGEMAKER_BASE_DIR`` moves the
``/opt/ml`` root (the process runtime without a mount namespace, and the tests), a path under ``/opt/ml`` is read
relative to that base instead. Nothing here runs at import time.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from containers.toolkit.environment import Paths
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["AnalyzerConfig", "DatasetFormat", "parse_time"]

CONTAINER_ROOT = PurePosixPath("/opt/ml")
DEFAULT_DATASET_SOURCE = "/opt/ml/processing/input/baseline_dataset_input"
DEFAULT_OUTPUT_PATH = "/opt/ml/processing/output"
DEFAULT_GROUND_TRUTH_SOURCE = "/opt/ml/processing/groundtruth"
PROBLEM_TYPES = ("Regression", "BinaryClassification", "MulticlassClassification")
DEFAULT_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
DEFAULT_MODEL_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"


@dataclass(frozen=True)
class DatasetFormat:
    """``dataset_format``: one of csv, json, parquet or sagemakerCaptureJson."""

    kind: str  # "csv" | "json" | "parquet" | "capture"
    header: bool = False
    output_columns_position: str = "START"
    lines: bool = True
    capture_index_names: tuple[str, ...] = ("endpointInput", "endpointOutput")

    @classmethod
    def parse(cls, text: str | None) -> DatasetFormat:
        if not text:
            raise UserError(
                "Missing environment variable dataset_format: the analyzer cannot tell how to read the data. "
                'Set it, e.g. {"csv": {"header": true}} or {"sagemakerCaptureJson": {}}.'
            )
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"dataset_format is not JSON ({exc}): {text[:200]!r}. Pass a JSON object.") from exc
        if not isinstance(raw, dict) or len(raw) != 1:
            raise UserError(f"dataset_format must be an object with one key (csv, json, parquet, ...): {text[:200]!r}")
        key, options = next(iter(raw.items()))
        options = options if isinstance(options, dict) else {}
        if key == "csv":
            position = str(options.get("output_columns_position", "START")).upper()
            return cls("csv", header=_flag(options.get("header", False)), output_columns_position=position)
        if key == "json":
            return cls("json", lines=_flag(options.get("lines", True)))
        if key == "parquet":
            return cls("parquet")
        if key == "sagemakerCaptureJson":
            names = options.get("captureIndexNames") or ["endpointInput", "endpointOutput"]
            return cls("capture", capture_index_names=tuple(str(n) for n in names))
        raise UserError(
            f"Unsupported dataset_format {key!r}: the analyzer reads csv, json, parquet and sagemakerCaptureJson."
        )


@dataclass(frozen=True)
class AnalyzerConfig:
    """Everything one analyzer run needs, with container paths already mapped onto the base directory."""

    paths: Paths
    dataset_format: DatasetFormat
    dataset_source: Path
    output_path: Path
    analysis_type: str  # "DATA_QUALITY" | "MODEL_QUALITY"
    baseline_statistics: Path | None
    baseline_constraints: Path | None
    publish_cloudwatch_metrics: bool
    start_time: datetime | None
    end_time: datetime | None
    endpoint_name: str
    schedule_name: str
    record_preprocessor_script: Path | None
    post_analytics_processor_script: Path | None
    categorical_drift_method: str | None
    problem_type: str | None
    inference_attribute: str | None
    probability_attribute: str | None
    ground_truth_attribute: str | None
    probability_threshold: float
    ground_truth_source: Path
    cloudwatch_namespace: str
    environ: Mapping[str, str]

    @property
    def is_monitoring(self) -> bool:
        """A monitoring execution compares with a baseline; a baselining job suggests one."""
        return self.baseline_constraints is not None or self.baseline_statistics is not None

    @property
    def metrics_dir(self) -> Path:
        """Where CloudWatch metric records go (the BYOC contract's ``/opt/ml/output/metrics/cloudwatch``)."""
        return self.paths.output_dir / "metrics" / "cloudwatch"

    @property
    def message_file(self) -> Path:
        """Processing's exit message (``ExitMessage`` / ``FailureReason``)."""
        return self.paths.output_dir / "message"

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> AnalyzerConfig:
        env = dict(os.environ if env is None else env)
        paths = Paths.from_env(env)
        analysis_type = (env.get("analysis_type") or "DATA_QUALITY").upper()
        if analysis_type not in ("DATA_QUALITY", "MODEL_QUALITY"):
            raise UserError(f"Unsupported analysis_type {analysis_type!r}: use MODEL_QUALITY or leave it unset.")
        problem_type = env.get("problem_type") or None
        if analysis_type == "MODEL_QUALITY" and problem_type not in PROBLEM_TYPES:
            raise UserError(
                f"problem_type {problem_type!r} is not valid for a model quality job: use one of "
                f"{', '.join(PROBLEM_TYPES)}."
            )
        namespace_default = DEFAULT_MODEL_NAMESPACE if analysis_type == "MODEL_QUALITY" else DEFAULT_NAMESPACE
        return cls(
            paths=paths,
            dataset_format=DatasetFormat.parse(env.get("dataset_format")),
            dataset_source=_local(paths, env.get("dataset_source") or DEFAULT_DATASET_SOURCE),
            output_path=_local(paths, env.get("output_path") or DEFAULT_OUTPUT_PATH),
            analysis_type=analysis_type,
            baseline_statistics=_optional_path(paths, env.get("baseline_statistics")),
            baseline_constraints=_optional_path(paths, env.get("baseline_constraints")),
            publish_cloudwatch_metrics=(env.get("publish_cloudwatch_metrics") or "Enabled").lower() == "enabled",
            start_time=parse_time(env.get("start_time"), "start_time"),
            end_time=parse_time(env.get("end_time"), "end_time"),
            endpoint_name=env.get("sagemaker_endpoint_name", ""),
            schedule_name=env.get("sagemaker_monitoring_schedule_name", ""),
            record_preprocessor_script=_optional_path(paths, env.get("record_preprocessor_script")),
            post_analytics_processor_script=_optional_path(paths, env.get("post_analytics_processor_script")),
            categorical_drift_method=env.get("categorical_drift_method") or None,
            problem_type=problem_type,
            inference_attribute=env.get("inference_attribute") or None,
            probability_attribute=env.get("probability_attribute") or None,
            ground_truth_attribute=env.get("ground_truth_attribute") or None,
            probability_threshold=_float(env.get("probability_threshold_attribute"), 0.5),
            ground_truth_source=_local(paths, env.get("ground_truth_source") or DEFAULT_GROUND_TRUTH_SOURCE),
            cloudwatch_namespace=env.get("SAGESTACK_CLOUDWATCH_NAMESPACE") or namespace_default,
            environ=env,
        )


def _local(paths: Paths, container_path: str) -> Path:
    """``container_path`` as seen by this process: rebased under ``paths.base`` when it lies under ``/opt/ml``."""
    pure = PurePosixPath(container_path)
    if paths.base != Path(str(CONTAINER_ROOT)) and pure.is_relative_to(CONTAINER_ROOT):
        return paths.base.joinpath(*pure.relative_to(CONTAINER_ROOT).parts)
    return Path(container_path)


def _optional_path(paths: Paths, value: str | None) -> Path | None:
    return _local(paths, value) if value else None


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes")


def _float(value: str | None, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise UserError(f"probability_threshold_attribute {value!r} is not a number; pass e.g. 0.5.") from exc


def parse_time(value: str | None, name: str = "time") -> datetime | None:
    """An ISO-8601 instant (``2022-02-14T17:25:49Z``, with or without fraction/offset) as an aware UTC datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise UserError(f"{name} {value!r} is not an ISO-8601 time; use e.g. 2022-02-14T17:00:00Z.") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
