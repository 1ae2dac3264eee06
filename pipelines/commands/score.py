"""``python -m pipelines.commands.score``: score the credit-risk test split through the endpoint, with each row's
features read from the feature group's online store.

The pipeline's ``TrainingSet`` step writes ``features/online_scoring/``: ``online_scoring.csv`` (``applicant_id,risk``
of the test split) and ``feature_names.json`` (the model's columns in order). This command reads the rows' features
with ``BatchGetRecord`` (100 identifiers a call) from the ``<pipeline>-features`` group, writes them in the SageMaker
CSV layout (label first) to a temporary file and scores it with the Spark endpoint transformer
(``python -m spark_jobs.endpoint_scoring.score``), whose one JSON summary line (rows, mean score, AUC) it prints.

Usage: ``python -m pipelines.commands.score [--endpoint credit-risk] [--pipeline credit-risk] [--input s3://...]
[--target local|aws]``. Exit code 1 when a row has no record in the online store, 2 without a stack or settings.
See docs/feature-store.md#the-credit-risk-pipeline.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.library.console import command_parser, configure_cli_logging, say
from pipelines.library.local_stack import BootstrapError, target_settings
from pipelines.library.run_settings import SettingsError, Target

logger = logging.getLogger(__name__)

BATCH = 100  # BatchGetRecord's identifiers per feature group and call
IDENTIFIER, LABEL = "applicant_id", "risk"


class OnlineFeaturesError(Exception):
    """Rows whose features the online store does not hold."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser(__doc__)
    parser.add_argument("--endpoint", default="credit-risk", help="an InService endpoint (make deploy)")
    parser.add_argument("--pipeline", default="credit-risk", help="whose features/online_scoring and feature group")
    parser.add_argument("--input", help="s3:// prefix of online_scoring (default: the pipeline's)")
    parser.add_argument("--feature-group", help="default: <pipeline>-features")
    return parser.parse_args(argv)


def read_scoring_rows(s3: Any, uri: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``(applicant id, label)`` rows and the feature names from ``<uri>/online_scoring.csv`` and its JSON."""
    bucket, _, prefix = uri.removeprefix("s3://").rstrip("/").partition("/")
    body = s3.get_object(Bucket=bucket, Key=f"{prefix}/online_scoring.csv")["Body"].read().decode()
    names = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/feature_names.json")["Body"].read())
    reader = csv.DictReader(io.StringIO(body))
    return [(row[IDENTIFIER], row[LABEL]) for row in reader], [str(n) for n in names]


def online_features(fsr: Any, group: str, identifiers: list[str], names: list[str]) -> dict[str, list[str]]:
    """Each identifier's feature values (in ``names`` order) from the online store, ``BATCH`` identifiers a call."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(identifiers), BATCH):
        chunk = identifiers[start : start + BATCH]
        answer = fsr.batch_get_record(
            Identifiers=[{"FeatureGroupName": group, "RecordIdentifiersValueAsString": chunk, "FeatureNames": names}]
        )
        for record in answer.get("Records", []):
            values = {f["FeatureName"]: f.get("ValueAsString", "") for f in record["Record"]}
            found[record["RecordIdentifierValueAsString"]] = [values.get(n, "") for n in names]
    missing = [i for i in identifiers if i not in found]
    if missing:
        raise OnlineFeaturesError(
            f"{len(missing)} of {len(identifiers)} rows have no record in the online store of {group} "
            f"(e.g. {missing[:5]}): run `make pipeline` first"
        )
    return found


def write_features_csv(path: Path, rows: list[tuple[str, str]], features: dict[str, list[str]]) -> None:
    """The SageMaker layout the scorer reads: no header, label first."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for identifier, label in rows:
            writer.writerow([label, *features[identifier]])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_cli_logging(args.verbose)
    try:
        settings = target_settings(Target(args.target), say)
        session = settings.sdk_session()
        uri = args.input or f"s3://{session.default_bucket()}/{args.pipeline}/features/online_scoring"
        group = args.feature_group or f"{args.pipeline}-features"
        rows, names = read_scoring_rows(session.boto_session.client("s3"), uri)
        fsr = session.boto_session.client("sagemaker-featurestore-runtime")
        features = online_features(fsr, group, [identifier for identifier, _ in rows], names)
    except (BootstrapError, SettingsError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ClientError, OnlineFeaturesError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    say(f"==> {len(rows)} rows: {len(names)} features each from the online store of {group}")
    with tempfile.TemporaryDirectory(prefix="sagestack-score-") as staging:
        path = Path(staging) / "test.csv"
        write_features_csv(path, rows, features)
        command = [sys.executable, "-m", "spark_jobs.endpoint_scoring.score", "--endpoint", args.endpoint]
        return subprocess.run([*command, "--input", str(path)], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
