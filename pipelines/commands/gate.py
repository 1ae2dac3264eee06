"""``python -m pipelines.commands.gate``: the evaluation gate CI runs between the pipeline and the deployment.

Waits for a pipeline execution (``--execution``, default: the pipeline's newest), then passes only when the execution
Succeeded, every Condition step (the credit-risk ``AucGate``) took its true branch, no Fail step ran, a model package
was registered and, with ``--min-auc``, the evaluation's ``evaluation.json`` AUC is at least that. Prints the
evaluation metrics and the package; ``--output FILE`` appends ``key=value`` lines (the ``$GITHUB_OUTPUT`` format:
``passed``, ``execution``, ``package``, ``auc``) so the deploy job deploys exactly the gated package.
Exit codes: 0 passed, 1 the gate failed (do not deploy), 2 the target cannot be reached or configured.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipelines.library.console import command_parser, configure_cli_logging
from pipelines.library.execution_watch import StepRow, follow, step_rows
from pipelines.library.local_stack import BootstrapError, target_settings
from pipelines.library.run_settings import SettingsError, Target

logger = logging.getLogger(__name__)


class GateError(RuntimeError):
    """There is no execution to judge (unknown pipeline, no execution yet)."""


@dataclass
class Verdict:
    execution: str
    status: str
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    package: str | None = None

    @property
    def passed(self) -> bool:
        return not self.reasons

    def outputs(self) -> dict[str, str]:
        auc = self.metrics.get("auc")
        return {
            "passed": "true" if self.passed else "false",
            "execution": self.execution,
            "package": self.package or "",
            "auc": "" if auc is None else str(auc),
        }


def newest_execution(sm: Any, pipeline: str) -> str:
    try:
        listed = sm.list_pipeline_executions(
            PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
        )
    except ClientError as exc:
        raise GateError(f"Cannot list the executions of pipeline {pipeline}: {exc}") from exc
    summaries = listed["PipelineExecutionSummaries"]
    if not summaries:
        raise GateError(f"Pipeline {pipeline} has no execution: run `make pipeline` first.")
    return str(summaries[0]["PipelineExecutionArn"])


def judge(described: dict[str, Any], rows: list[StepRow], min_auc: float | None) -> Verdict:
    """The verdict on a finished execution from its status and steps (``rows`` carry the evaluation metrics)."""
    verdict = Verdict(described["PipelineExecutionArn"], described["PipelineExecutionStatus"])
    if verdict.status != "Succeeded":
        verdict.reasons.append(f"execution {verdict.status}: {described.get('FailureReason') or 'no reason given'}")
    for row in rows:
        if "Condition" in row.metadata and row.metadata["Condition"].get("Outcome") != "True":
            verdict.reasons.append(f"condition {row.name} is {row.metadata['Condition'].get('Outcome')}")
        if "Fail" in row.metadata or (row.status == "Failed" and row.failure_reason):
            verdict.reasons.append(f"step {row.name} failed: {row.failure_reason or 'Fail step'}")
        if "RegisterModel" in row.metadata and row.status == "Succeeded":
            verdict.package = row.metadata["RegisterModel"]["Arn"]
        if "auc" in row.metrics:
            verdict.metrics = dict(row.metrics)
    if verdict.package is None:
        verdict.reasons.append("no model package was registered: nothing to deploy")
    auc = verdict.metrics.get("auc")
    if min_auc is not None and (auc is None or float(auc) < min_auc):
        verdict.reasons.append(f"evaluation AUC {auc} is below --min-auc {min_auc}")
    return verdict


def gate(sm: Any, s3: Any, pipeline: str, execution: str | None, min_auc: float | None) -> Verdict:
    arn = execution or newest_execution(sm, pipeline)
    print(f"==> gate on {arn}", flush=True)
    described = follow(sm, arn, lambda line: print("  " + line, flush=True), poll_seconds=5.0)
    return judge(described, step_rows(sm, s3, arn), min_auc)


def write_outputs(path: Path, verdict: Verdict) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(f"{key}={value}\n" for key, value in verdict.outputs().items())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser(__doc__)
    parser.add_argument("--pipeline", default="credit-risk", help="pipeline name (default: credit-risk)")
    parser.add_argument("--execution", help="execution ARN (default: the pipeline's newest execution)")
    parser.add_argument("--min-auc", type=float, help="also require this evaluation AUC (evaluation.json)")
    parser.add_argument("--output", type=Path, help="append key=value results to this file (e.g. $GITHUB_OUTPUT)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_cli_logging(args.verbose)
    target = Target(args.target)
    try:
        settings = target_settings(target)
        session = boto3.Session(region_name=settings.region)
        verdict = gate(session.client("sagemaker"), session.client("s3"), args.pipeline, args.execution, args.min_auc)
    except (BootstrapError, SettingsError, BotoCoreError) as exc:  # no stack, no settings, no credentials
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (GateError, ClientError) as exc:
        print(f"error: gate failed: {exc}", file=sys.stderr)
        return 1
    if args.output:
        write_outputs(args.output, verdict)
    metrics = ", ".join(f"{k}={v}" for k, v in verdict.metrics.items()) or "no evaluation metrics"
    print(f"    evaluation: {metrics}")
    if not verdict.passed:
        print(f"error: gate failed: {'; '.join(verdict.reasons)}", file=sys.stderr)
        return 1
    print(f"==> gate passed: deploy {verdict.package}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
