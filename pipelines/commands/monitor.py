"""``python -m pipelines.commands.monitor``: Model Monitor against the ``credit-risk`` endpoint ``make deploy`` made.

The steps are in ``pipelines/library/monitor_demo/monitor_steps.py``:

1. Baseline: the model's training split, as the pipeline's ``Features`` step wrote it (``labelled_train`` under
   ``s3://<bucket>/<pipeline>/features/``), scored by the deployed model in a batch transform, then
   ``DefaultModelMonitor.suggest_baseline`` (a processing job on the analyzer image).
2. Normal traffic (the test split's rows, ``labelled_test``, which the model never trained on) through the
   endpoint, then a one-time (``NOW``) monitoring schedule over exactly that traffic's window.
3. Drifted traffic (shifted amounts, durations and ages, a purpose and a job category never seen, empty cells),
   then a second ``NOW`` schedule over that window.
4. The violations of both runs on the terminal, and ``reports/monitor-<timestamp>/report.md`` with the drift
   reports (per-feature plots, baseline versus now) downloaded next to it.

Only boto3 and the SageMaker SDK talk to SageMaker; on ``--target local`` the stack is started the way
``pipelines/library/local_stack.py`` does when it is not running.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipelines.library.console import command_parser, configure_cli_logging, say
from pipelines.library.local_stack import BootstrapError, target_settings
from pipelines.library.monitor_demo import monitor_data as credit
from pipelines.library.monitor_demo.monitor_report import print_violations, write_report
from pipelines.library.monitor_demo.monitor_steps import Context, MonitorError, cloudwatch_drift, demo, stamp
from pipelines.library.run_settings import RunSettings, SettingsError, Target

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]


def _context(args: argparse.Namespace, settings: RunSettings) -> Context:
    session = settings.sdk_session()
    boto = session.boto_session
    started = stamp()
    endpoint = args.endpoint or settings.conf.endpoint_name
    return Context(
        settings=settings,
        session=session,
        sm=session.sagemaker_client,
        runtime=boto.client("sagemaker-runtime"),
        s3=boto.client("s3"),
        endpoint=endpoint,
        bucket=settings.bucket or session.default_bucket(),
        pipeline=args.pipeline_name,
        prefix=f"{endpoint}/monitor/{started}",
        folder=args.reports / f"monitor-{started}",
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser(__doc__)
    parser.add_argument("--endpoint", help="the endpoint `make deploy` created (default: conf/<target>.yml)")
    parser.add_argument(
        "--pipeline-name", default=credit.PIPELINE, help="the pipeline whose feature splits to use (%(default)s)"
    )
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_cli_logging(args.verbose)

    target = Target(args.target)
    try:
        settings = target_settings(target, say)
        ctx = _context(args, settings)
        results = demo(ctx, say)
    except (BootstrapError, SettingsError, MonitorError, credit.SplitsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, BootstrapError | SettingsError) else 1
    print_violations(results, say)
    report = write_report(ctx.folder, ctx.endpoint, ctx.notes, results, cloudwatch_drift(ctx, results))
    say(f"\nreport: {report}")
    failed = [r for r in results if not r.status.startswith("Completed")]
    for result in failed:
        print(f"error: the {result.label} run {result.status}: {result.failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
