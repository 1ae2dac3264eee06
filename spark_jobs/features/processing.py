"""The feature job's SageMaker processing entry: ``credit.py --processing`` run by ``PySparkProcessor``.

Reads the raw German credit CSV under ``/opt/ml/processing/input`` and writes one CSV file per processing output,
``/opt/ml/processing/<name>/<name>.csv``, with the same columns in the same order everywhere (``risk``, then
``Encoding.feature_columns()``):

==================  ============  =====  ======  ===========================================================
output              split         label  header  read by
==================  ============  =====  ======  ===========================================================
``train``           train         first  no      tuning/training (XGBoost CSV)
``validation``      validation    first  no      tuning/training
``test``            test          first  no      evaluation
``test_features``   test          none   no      batch transform
``labelled_train``  train         first  yes     data bias (Clarify) and data quality (Model Monitor) checks
``labelled_test``   test          first  yes     model bias, explainability checks
==================  ============  =====  ======  ===========================================================

Whole numbers are written as integers (``sex`` is ``0``/``1``, which Clarify treats as a category), other numbers
as Python's shortest round-trip text. Rows stream to the driver one partition at a time (``toLocalIterator``), so
every output is exactly one file whatever the partitioning and executors never need the output directory. Only
pyspark (3.5 or 4.x) and the standard library are used here: AWS's Spark processing image has no pyarrow or pandas.

With ``--feature-group`` (the credit-risk pipeline) the job writes no split: every encoded row goes to that feature
group (online and offline store, ``spark_jobs.features.credit_feature_group``, which needs pyarrow and boto3) and
the one output ``entities`` holds the rows' keys, splits and labels, from which the pipeline's ``TrainingSet`` step
builds the six outputs above with a point-in-time query over the offline store.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from spark_jobs.config import SparkSettings
from spark_jobs.errors import FeatureJobError, InputDataError, SparkJobsError
from spark_jobs.features import credit
from spark_jobs.features.credit_feature_group import FeatureGroupTarget
from spark_jobs.session import build_session

logger = logging.getLogger(__name__)

PROCESSING_BASE = "/opt/ml/processing"
ENTITIES = "entities"  # the one output with --feature-group


@dataclass(frozen=True)
class Output:
    """One processing output: which split it holds, whether the label is its first column, whether it has a header."""

    name: str
    split: str
    label: bool
    header: bool


OUTPUTS = (
    Output("train", "train", label=True, header=False),
    Output("validation", "validation", label=True, header=False),
    Output("test", "test", label=True, header=False),
    Output("test_features", "test", label=False, header=False),
    Output("labelled_train", "train", label=True, header=True),
    Output("labelled_test", "test", label=True, header=True),
)


@dataclass(frozen=True)
class ProcessingConfig:
    input: str
    output: Path
    seed: int
    fractions: credit.SplitFractions
    spark: SparkSettings
    feature_group: FeatureGroupTarget | None = None


def parse_args(argv: list[str]) -> ProcessingConfig:
    parser = argparse.ArgumentParser(prog="spark_jobs/features/credit.py", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--processing", action="store_true", help="select this entry (SageMaker processing)")
    source, base = f"{PROCESSING_BASE}/input", PROCESSING_BASE
    parser.add_argument("--input", default=source, help="CSV file or directory, header first (default: %(default)s)")
    parser.add_argument("--output", default=base, help="a sub-directory per output under it (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fractions", default="0.7,0.15,0.15", help="train,validation,test")
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--feature-group", help="ingest the features into this feature group; write only 'entities'")
    parser.add_argument("--feature-group-role", default="", help="RoleArn when the feature group is created")
    parser.add_argument("--offline-store-uri", default="", help="offline store S3 URI when the group is created")
    args = parser.parse_args(argv)
    try:
        fractions = credit.SplitFractions.parse(args.fractions)
    except FeatureJobError as exc:
        parser.error(str(exc))
    # the master comes from spark-submit (local[*] on the stack, YARN on AWS)
    spark = SparkSettings(master=None, app_name="sagestack-credit-features", shuffle_partitions=args.shuffle_partitions)
    group = None
    if args.feature_group:
        if not (args.feature_group_role and args.offline_store_uri):
            parser.error("--feature-group needs --feature-group-role and --offline-store-uri")
        group = FeatureGroupTarget(args.feature_group, args.feature_group_role, args.offline_store_uri)
    return ProcessingConfig(args.input, Path(args.output), args.seed, fractions, spark, group)


def read_raw(session: SparkSession, source: str) -> DataFrame:
    """Every ``*.csv`` under ``source`` (a file or a directory, searched recursively), header row required."""
    local = Path(source) if "://" not in source else None
    if local is not None and not (local.is_file() or any(local.rglob("*.csv"))):
        raise InputDataError(
            f"no CSV input under {source}",
            why="the processing input channel is empty or missing",
            fix="give the step a ProcessingInput with the German credit CSV, destination /opt/ml/processing/input",
        )
    reader = session.read.option("header", "true").option("inferSchema", "false")
    if local is None or local.is_dir():
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.csv")
    return reader.csv(source)


def format_value(value: Any) -> str:
    """A CSV cell: empty for null/NaN, whole numbers as integers, other numbers in shortest round-trip form."""
    if value is None:
        return ""
    number = float(value)
    if math.isnan(number):
        return ""
    return str(int(number)) if number.is_integer() else repr(number)


def write_outputs(encoded: DataFrame, columns: list[str], base: Path) -> dict[str, int]:
    """Every output in one pass over ``encoded`` (which has ``split`` and ``columns``); rows written per output."""
    counts = {output.name: 0 for output in OUTPUTS}
    by_split: dict[str, list[Output]] = {split: [] for split in credit.SPLITS}
    with ExitStack() as files:
        writers: dict[str, Any] = {}
        for output in OUTPUTS:
            folder = base / output.name
            folder.mkdir(parents=True, exist_ok=True)
            handle = files.enter_context((folder / f"{output.name}.csv").open("w", newline="", encoding="utf-8"))
            writers[output.name] = csv.writer(handle, lineterminator="\n")
            if output.header:
                writers[output.name].writerow(columns if output.label else columns[1:])
            by_split[output.split].append(output)
        for row in encoded.select(credit.SPLIT, *columns).toLocalIterator():
            cells = [format_value(value) for value in row[1:]]
            for output in by_split[row[0]]:
                writers[output.name].writerow(cells if output.label else cells[1:])
                counts[output.name] += 1
    return counts


def write_feature_group(
    encoded: DataFrame, features: list[str], target: FeatureGroupTarget, base: Path
) -> dict[str, int]:
    """Features into the feature group (both stores); ``entities/entities.csv`` (``applicant_id``, ``event_time``,
    ``split``, ``risk``, header first) and ``entities/feature_names.json`` (the model's columns in order) for the
    point-in-time join that builds the training set (docs/feature-store.md#the-credit-risk-pipeline)."""
    from spark_jobs.config import AwsSettings
    from spark_jobs.features import credit_feature_group as group

    aws = AwsSettings.from_env()
    arn = group.ensure_feature_group(aws, target, features)
    frame = group.keyed(encoded, group.event_time_now())
    group.ingest(aws, frame, arn, features)
    folder = base / ENTITIES
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feature_names.json").write_text(json.dumps(features), encoding="utf-8")
    rows = 0
    with (folder / f"{ENTITIES}.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([group.RECORD_IDENTIFIER, group.EVENT_TIME, credit.SPLIT, credit.LABEL])
        keys = frame.select(group.RECORD_IDENTIFIER, group.EVENT_TIME, credit.SPLIT, credit.LABEL)
        for row in keys.orderBy(group.RECORD_IDENTIFIER).toLocalIterator():
            writer.writerow([row[0], repr(row[1]), row[2], format_value(row[3])])
            rows += 1
    frame.unpersist()
    logger.info("feature group %s: %d records in both stores", target.name, rows)
    return {ENTITIES: rows}


def run(config: ProcessingConfig) -> dict[str, int]:
    """Clean, split, encode, write the outputs; returns the rows written per output."""
    session = build_session(config.spark)
    raw = read_raw(session, config.input)
    dropped = credit.invalid_label_rows(raw).count()
    if dropped:
        logger.warning("%d rows have a missing or invalid label (not 0/1) and are not written", dropped)
    encoded, encoding = credit.prepare(raw, config.seed, config.fractions)
    if config.feature_group is not None:
        return write_feature_group(encoded, encoding.feature_columns(), config.feature_group, config.output)
    columns = [credit.LABEL, *encoding.feature_columns()]
    counts = write_outputs(encoded, columns, config.output)
    logger.info("columns (%d): %s", len(columns), ",".join(columns))
    for name, rows in counts.items():
        logger.info("%s: %d rows", name, rows)
    return counts


def main(argv: list[str] | None = None) -> int:
    """The process entry (``spark-submit credit.py --processing ...``); stops the SparkSession at the end."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(config)
    except SparkJobsError as exc:
        logger.error("%s", exc)
        return 1
    finally:
        active = SparkSession.getActiveSession()
        if active is not None:
            active.stop()
    return 0
