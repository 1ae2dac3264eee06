"""``python -m pipelines.commands.run_pipeline``: upsert and start a pipeline, follow it live, summarise, report.

Usage: ``python -m pipelines.commands.run_pipeline [--pipeline credit-risk|segmentation] [--target local|aws]
[--param Name=Value ...]``.
On ``--target local`` the stack at ``$AWS_ENDPOINT_URL`` is used if it answers, else it is started in the background
(``python -m infra.cli up``; stop it with ``make down``). Exit code 1 (with the failing step's reason) if the
execution does not succeed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from pipelines.library.console import command_parser, configure_cli_logging
from pipelines.library.execution_watch import follow, step_rows, summary_table
from pipelines.library.local_stack import BootstrapError, target_settings
from pipelines.library.run_report import write_report
from pipelines.library.run_settings import RunSettings, SettingsError, Target

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT / "data" / "german_credit.csv"
PIPELINES = ("credit-risk", "segmentation")


def supports_tuning(sm: Any) -> bool:
    """True when the target answers the tuning API (the local stack gains it in its own issue)."""
    try:
        sm.list_hyper_parameter_tuning_jobs(MaxResults=1)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "UnknownOperationException":
            return False
        raise
    return True


def build_credit_risk(
    settings: RunSettings, tuning: str, name: str, rows: int = 0, dataset: Path = DATASET
) -> tuple[Any, dict[str, str]]:
    from pipelines.credit_risk.pipeline import CreditRiskConfig, build

    session = settings.session()
    bucket = session.default_bucket()
    key = f"{name}/input/{dataset.stem}{f'-first-{rows}' if rows else ''}.csv"
    lines = dataset.read_text(encoding="utf-8").splitlines(keepends=True)
    body = "".join(lines[: rows + 1] if rows else lines).encode()  # small data (CI): the header + the first rows
    session.boto_session.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    use_tuning = supports_tuning(session.sagemaker_client) if tuning == "auto" else tuning == "on"
    config = CreditRiskConfig(
        name=name,
        role=settings.role,
        bucket=bucket,
        input_uri=f"s3://{bucket}/{key}",
        use_tuning=use_tuning,
        model_package_group=settings.conf.model_package_groups["credit_risk"],
        instance_type=settings.conf.instance_types["training"],
    )
    return build(config, session), {"tuning": "Bayesian tuning" if use_tuning else "single training job"}


def build_segmentation(settings: RunSettings, name: str, rows: int) -> tuple[Any, dict[str, str]]:
    from pipelines.segmentation.pipeline import SegmentationConfig, build

    session = settings.session()
    config = SegmentationConfig(name=name, role=settings.role, bucket=session.default_bucket(), rows=rows)
    return build(config, session), {"data": f"digits ({rows or 'all'} images)"}


def build_pipeline(settings: RunSettings, args: argparse.Namespace, name: str) -> tuple[Any, dict[str, str]]:
    """``--rows`` and ``--tuning`` default to the small-data switches of conf/<target>.yml."""
    if args.pipeline == "segmentation":
        return build_segmentation(settings, name, settings.conf.segmentation_rows if args.rows is None else args.rows)
    return build_credit_risk(settings, args.tuning or settings.conf.tuning, name, args.rows or 0, args.data)


def append_sections(pipeline: str, sm: Any, s3: Any, rows: list[Any], report: Path) -> None:
    """Pipeline-specific report sections after the common ones."""
    if pipeline != "segmentation":
        return
    from pipelines.segmentation.cluster_report import segmentation_section

    lines = segmentation_section(sm, s3, rows, report.parent)
    if lines:
        with report.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser(__doc__)
    parser.add_argument("--pipeline", choices=PIPELINES, default="credit-risk")
    parser.add_argument("--name", help="pipeline name (default: the --pipeline value)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="pipeline parameter")
    parser.add_argument("--tuning", choices=("auto", "on", "off"), help="default: conf/<target>.yml (auto)")
    parser.add_argument("--rows", type=int, help="use the first N rows/digits (0: all; segmentation default: conf)")
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    parser.add_argument(
        "--data",
        type=Path,
        default=DATASET,
        help="credit-risk input CSV with the German credit schema (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_cli_logging(args.verbose)
    target = Target(args.target)
    try:
        settings = target_settings(target)
    except (BootstrapError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    name = args.name or args.pipeline
    pipeline, notes = build_pipeline(settings, args, name)
    print(f"==> upserting pipeline {name} ({', '.join(notes.values())})", flush=True)
    pipeline.upsert(role_arn=settings.role)
    parameters = dict(item.split("=", 1) for item in args.param)
    execution = pipeline.start(parameters=parameters or None)
    print(f"==> started {execution.arn}", flush=True)
    sm = pipeline.sagemaker_session.sagemaker_client
    s3 = boto3.Session(region_name=settings.region).client("s3")
    described = follow(sm, execution.arn, lambda line: print("  " + line, flush=True))
    wall = time.perf_counter() - started
    rows = step_rows(sm, s3, execution.arn)
    print()
    print("\n".join(summary_table(rows)))
    report = write_report(sm, s3, described, rows, args.reports, wall)
    append_sections(args.pipeline, sm, s3, rows, report)
    status = described["PipelineExecutionStatus"]
    print(f"\nexecution {status} in {wall:.1f} s; report: {report}")
    if status != "Succeeded":
        print(f"error: {described.get('FailureReason') or status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
