"""``python -m spark_jobs.features.credit``: the German credit feature job (local or ``spark-submit``), to a
directory or S3.

The SageMaker processing entry (``--processing``) is ``spark_jobs.features.processing``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass

from spark_jobs.config import AwsSettings, SparkSettings
from spark_jobs.errors import FeatureJobError, SparkJobsError
from spark_jobs.features import credit
from spark_jobs.features.job import FORMATS, manifest_document, write_manifest, write_outputs
from spark_jobs.session import build_session
from spark_jobs.storage import Destination

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CreditJobConfig:
    input: str
    output: str
    formats: tuple[str, ...]
    seed: int
    fractions: credit.SplitFractions
    spark: SparkSettings


def parse_args(argv: list[str]) -> CreditJobConfig:
    parser = argparse.ArgumentParser(prog="python -m spark_jobs.features.credit", description=__doc__)
    parser.add_argument("--input", default="data/german_credit.csv", help="CSV with a header (any Spark-readable URI)")
    parser.add_argument("--output", required=True, help="local directory or s3://bucket/prefix")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of csv,parquet,recordio")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fractions", default="0.7,0.15,0.15", help="train,validation,test")
    parser.add_argument("--master", default="local[2]", help="Spark master; 'none' leaves it to spark-submit")
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--driver-memory", default=None)
    args = parser.parse_args(argv)
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        parser.error(f"unknown formats {unknown}; choose from {list(FORMATS)}")
    try:
        fractions = credit.SplitFractions.parse(args.fractions)
    except FeatureJobError as exc:
        parser.error(str(exc))
    master = None if args.master.lower() == "none" else args.master
    spark = SparkSettings(
        master=master,
        app_name="sagestack-credit-features",
        shuffle_partitions=args.shuffle_partitions,
        driver_memory=args.driver_memory,
    )
    return CreditJobConfig(args.input, args.output, formats, args.seed, fractions, spark)


def run(config: CreditJobConfig, aws: AwsSettings) -> str:
    """Run the job with an explicit config; returns the manifest URI."""
    session = build_session(config.spark)
    raw = session.read.csv(config.input, header=True, inferSchema=False)
    dropped = credit.invalid_label_rows(raw).count()
    if dropped:
        logger.warning("%d rows have a missing or invalid label (not 0/1) and are not written", dropped)
    encoded, encoding = credit.prepare(raw, config.seed, config.fractions)
    output = Destination(config.output, aws)
    features = encoding.feature_columns()
    channels, baseline = write_outputs(
        encoded,
        output,
        label=credit.LABEL,
        features=features,
        split_column=credit.SPLIT,
        splits=credit.SPLITS,
        formats=config.formats,
    )
    extra = {
        "seed": config.seed,
        "fractions": list(vars(config.fractions).values()),
        "encoding": encoding.to_json(),
        "dropped_rows": {"invalid_label": dropped},
    }
    document = manifest_document(
        job="german_credit",
        source=config.input,
        label=credit.LABEL,
        features=features,
        channels=channels,
        baseline=baseline,
        extra=extra,
    )
    return write_manifest(output, document)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        manifest = run(config, AwsSettings.from_env())
    except SparkJobsError as exc:
        logger.error("%s", exc)
        return 1
    print(manifest)
    return 0
