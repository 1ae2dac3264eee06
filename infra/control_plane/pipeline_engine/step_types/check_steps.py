"""ClarifyCheck and QualityCheck steps (docs/pipelines.md#check-steps): a processing job computes the new baseline,
which is
checked against the previous one (supplied, else the latest Approved model package's ``DriftCheckBaselines``).

ClarifyCheck: one Clarify job; ``analysis.json`` is the calculated baseline, compared here (``clarify_compare``).
QualityCheck: one Model Monitor baselining job (``statistics.json`` + ``constraints.json``); when a check is due, a
second analyzer job over the same dataset with ``baseline_constraints``/``baseline_statistics`` set writes
``constraint_violations.json`` (the analyzer's own checks, docs/reference/model-monitor-files.md).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from infra.control_plane.core.errors import ServiceError
from infra.control_plane.monitoring.clarify.clarify_compare import BaselineMismatch, violations
from infra.control_plane.pipeline_engine.definition import StepType
from infra.control_plane.pipeline_engine.step_types.sagemaker_steps import (
    StepContext,
    StepFailed,
    StepOutcome,
    run_processing,
)

logger = logging.getLogger(__name__)

CHECK_TYPES = frozenset({StepType.CLARIFY_CHECK, StepType.QUALITY_CHECK})
# CheckType -> (DriftCheckBaselines block, constraints key, statistics key or None)
REGISTRY_BASELINES: Mapping[str, tuple[str, str, str | None]] = {
    "DATA_BIAS": ("Bias", "PreTrainingConstraints", None),
    "MODEL_BIAS": ("Bias", "PostTrainingConstraints", None),
    "MODEL_EXPLAINABILITY": ("Explainability", "Constraints", None),
    "DATA_QUALITY": ("ModelDataQuality", "Constraints", "Statistics"),
    "MODEL_QUALITY": ("ModelQuality", "Constraints", "Statistics"),
}
_BASELINE_DIR = "/opt/ml/processing/baseline"
_VIOLATIONS = "constraint_violations.json"


@dataclass(frozen=True)
class CheckFlags:
    check_type: str
    skip_check: bool
    fail_on_violation: bool
    register_new_baseline: bool
    model_package_group: str | None
    supplied_constraints: str | None
    supplied_statistics: str | None
    model_name: str | None

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> CheckFlags:
        return cls(
            check_type=str(fields.get("CheckType") or ""),
            skip_check=_flag(fields.get("SkipCheck"), False),
            fail_on_violation=_flag(fields.get("FailOnViolation"), True),
            register_new_baseline=_flag(fields.get("RegisterNewBaseline"), False),
            model_package_group=_text(fields.get("ModelPackageGroupName")),
            supplied_constraints=_text(fields.get("SuppliedBaselineConstraints")),
            supplied_statistics=_text(fields.get("SuppliedBaselineStatistics")),
            model_name=_text(fields.get("ModelName")),
        )


@dataclass(frozen=True)
class Baseline:
    constraints: str | None
    statistics: str | None = None


def _flag(raw: Any, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    return str(raw).strip().lower() == "true"


def _text(raw: Any) -> str | None:
    return None if raw is None or raw == "" else str(raw)


def run_check_step(ctx: StepContext) -> StepOutcome:
    """Run the check job, resolve the previous baseline, compare unless skipped, and report the properties."""
    flags = CheckFlags.of(ctx.step_fields)
    if flags.check_type not in REGISTRY_BASELINES:
        known = list(REGISTRY_BASELINES)
        raise StepFailed(f"Step {ctx.step.name}: CheckType {flags.check_type!r} is not one of {known}.")
    clarify = ctx.step.type is StepType.CLARIFY_CHECK
    kind = "ClarifyCheck" if clarify else "QualityCheck"
    metadata: dict[str, Any] = {
        "CheckType": flags.check_type,
        "SkipCheck": flags.skip_check,
        "RegisterNewBaseline": flags.register_new_baseline,
        **({"ModelPackageGroupName": flags.model_package_group} if flags.model_package_group else {}),
    }
    arguments = _with_model_name(ctx, flags) if clarify else ctx.arguments
    described = _run_job(ctx, arguments, ctx.child_name, kind, metadata)
    output = _output_uri(ctx, arguments)
    calculated = Baseline(f"{output}/analysis.json") if clarify else _quality_files(output)
    previous = _previous_baseline(ctx, flags)
    metadata.update(_baseline_metadata("CalculatedBaseline", calculated))
    if not flags.skip_check:
        if previous.constraints is None:
            raise StepFailed(
                f"ClientError: {kind} step {ctx.step.name} has no baseline to check against: supply "
                "SuppliedBaselineConstraints, name a ModelPackageGroupName with an Approved package holding "
                f"DriftCheckBaselines, or set SkipCheck (and RegisterNewBaseline) for the first run."
            )
        found, report = (
            _clarify_check(ctx, flags, calculated, previous, output)
            if clarify
            else _quality_check(ctx, arguments, previous, output, kind, metadata)
        )
        metadata["ViolationReport"] = report
        ctx.on_metadata({kind: dict(metadata)})
        if found and flags.fail_on_violation:
            word = "Clarify" if clarify else "Quality"
            raise StepFailed(f"ClientError: {word} check failed. See violation report in {report}")
    used = calculated if flags.register_new_baseline else previous
    metadata.update(_baseline_metadata("BaselineUsedForDriftCheck", used))
    properties = {k: v for k, v in metadata.items() if k.startswith(("Calculated", "BaselineUsed"))}
    logger.info("%s %s: job %s, properties %s", kind, ctx.step.name, described.get("ProcessingJobName"), properties)
    return StepOutcome(properties, {kind: metadata})


def _baseline_metadata(prefix: str, baseline: Baseline) -> dict[str, str]:
    found = {f"{prefix}Constraints": baseline.constraints, f"{prefix}Statistics": baseline.statistics}
    return {k: v for k, v in found.items() if v is not None}


def _run_job(ctx: StepContext, arguments: Any, name: str, kind: str, metadata: dict[str, Any]) -> dict[str, Any]:
    def on_metadata(job: dict[str, Any]) -> None:
        metadata["CheckJobArn"] = (job.get("ProcessingJob") or {}).get("Arn")
        ctx.on_metadata({kind: dict(metadata)})

    return run_processing(replace(ctx, arguments=arguments, child_name=name, on_metadata=on_metadata)).properties


def _output_uri(ctx: StepContext, arguments: Mapping[str, Any]) -> str:
    outputs = (arguments.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    for wanted in ("analysis_result", "quality_check_output", None):
        for output in outputs:
            if wanted is None or output.get("OutputName") == wanted:
                return str(output["S3Output"]["S3Uri"]).rstrip("/")
    raise StepFailed(f"Step {ctx.step.name}: the check job has no ProcessingOutputConfig output to read results from.")


def _quality_files(output: str) -> Baseline:
    return Baseline(f"{output}/constraints.json", f"{output}/statistics.json")


def _io(ctx: StepContext) -> tuple[Callable[[str], bytes], Callable[[str, bytes], None]]:
    if ctx.read_s3 is None or ctx.write_s3 is None:
        raise StepFailed(f"Step {ctx.step.name}: the engine gave this check step no S3 access.")
    return ctx.read_s3, ctx.write_s3


def _read_json(ctx: StepContext, uri: str, what: str) -> Any:
    read, _ = _io(ctx)
    try:
        return json.loads(read(uri))
    except Exception as exc:  # S3AccessError, bad JSON: both are the user's file
        raise StepFailed(f"ClientError: Step {ctx.step.name}: cannot read the {what} {uri}: {exc}") from exc


def _with_model_name(ctx: StepContext, flags: CheckFlags) -> Any:
    """Put the step-level ``ModelName`` back into ``predictor.model_name`` (the SDK strips it from the config)."""
    if flags.check_type == "DATA_BIAS" or not flags.model_name:
        return ctx.arguments
    arguments = copy.deepcopy(ctx.arguments)
    config_input = next(
        (i for i in arguments.get("ProcessingInputs") or [] if i.get("InputName") == "analysis_config"), None
    )
    if config_input is None:
        raise StepFailed(f"Step {ctx.step.name}: the Clarify job has no analysis_config input.")
    source = str(config_input["S3Input"]["S3Uri"]).rstrip("/")
    uri = source if source.endswith(".json") else f"{source}/analysis_config.json"
    config = _read_json(ctx, uri, "analysis config")
    config.setdefault("predictor", {})["model_name"] = flags.model_name
    target = f"{uri.rsplit('/', 1)[0]}/{ctx.child_name}/analysis_config.json"
    _io(ctx)[1](target, json.dumps(config).encode())
    config_input["S3Input"]["S3Uri"] = target
    return arguments


def _previous_baseline(ctx: StepContext, flags: CheckFlags) -> Baseline:
    if flags.supplied_constraints or flags.supplied_statistics:
        return Baseline(flags.supplied_constraints, flags.supplied_statistics)
    if not flags.model_package_group:
        return Baseline(None)
    block, constraints_key, statistics_key = REGISTRY_BASELINES[flags.check_type]
    try:
        listed = ctx.operations.call(
            "ListModelPackages",
            {
                "ModelPackageGroupName": flags.model_package_group,
                "ModelApprovalStatus": "Approved",
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
                "MaxResults": 1,
            },
        )
        summaries = listed.get("ModelPackageSummaryList") or []
        if not summaries:
            return Baseline(None)
        arn = summaries[0]["ModelPackageArn"]
        described = ctx.operations.call("DescribeModelPackage", {"ModelPackageName": arn})
    except ServiceError as exc:
        logger.info("no registry baseline in %s: %s", flags.model_package_group, exc.message)
        return Baseline(None)
    found = (described.get("DriftCheckBaselines") or {}).get(block) or {}
    constraints = (found.get(constraints_key) or {}).get("S3Uri")
    statistics = (found.get(statistics_key) or {}).get("S3Uri") if statistics_key else None
    return Baseline(constraints, statistics)


def _clarify_check(
    ctx: StepContext, flags: CheckFlags, calculated: Baseline, previous: Baseline, output: str
) -> tuple[list[dict[str, Any]], str]:
    current = _read_json(ctx, str(calculated.constraints), "calculated analysis")
    baseline = _read_json(ctx, str(previous.constraints), "baseline constraints")
    try:
        found = violations(flags.check_type, current, baseline)
    except BaselineMismatch as exc:
        raise StepFailed(f"ClientError: Step {ctx.step.name}: {exc} ({previous.constraints}).") from exc
    report = f"{output}/{_VIOLATIONS}"
    _io(ctx)[1](report, json.dumps({"version": "1.0", "violations": found}, indent=2).encode())
    return found, report


def _quality_check(
    ctx: StepContext, arguments: Any, previous: Baseline, output: str, kind: str, metadata: dict[str, Any]
) -> tuple[list[dict[str, Any]], str]:
    """A second analyzer job over the same dataset with the previous baseline set: the analyzer's own checks."""
    request = copy.deepcopy(arguments)
    env = request.setdefault("Environment", {})
    inputs = request.setdefault("ProcessingInputs", [])
    for name, uri in (("constraints", previous.constraints), ("statistics", previous.statistics)):
        if uri is None:
            continue
        local = f"{_BASELINE_DIR}/{name}"
        inputs.append(
            {
                "InputName": f"baseline_{name}",
                "AppManaged": False,
                "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File"},
            }
        )
        env[f"baseline_{name}"] = f"{local}/{uri.rsplit('/', 1)[-1]}"
    check_output = f"{output}/drift_check"
    for item in request["ProcessingOutputConfig"]["Outputs"]:
        item["S3Output"]["S3Uri"] = check_output
    name = f"{ctx.child_name[:57]}-check"
    _run_job(ctx, request, name, kind, dict(metadata))
    document = _read_json(ctx, f"{check_output}/{_VIOLATIONS}", "violation report")
    report = f"{output}/{_VIOLATIONS}"
    _io(ctx)[1](report, json.dumps(document, indent=2).encode())
    return list(document.get("violations") or []), report
