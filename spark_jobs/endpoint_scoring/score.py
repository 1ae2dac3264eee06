"""``python -m spark_jobs.endpoint_scoring.score``: score a test split through a SageMaker endpoint with the Spark
endpoint transformer.

```
python -m spark_jobs.endpoint_scoring.score --endpoint credit-risk --input <test split> [--output <dir>]
    [--format auto|csv|parquet] [--label risk | --no-label] [--master local[2]] [--max-rows 500] [--concurrency 4]
```

Input: a local file or directory, or an ``s3://`` prefix (downloaded first: there are no S3A jars here). CSV is the
SageMaker layout (no header, label first unless ``--no-label``: the credit-risk pipeline's ``test`` /
``test_features`` outputs and the feature job's ``test/csv``); Parquet has column names (the feature job's
``test/parquet``; the label is ``--label``, default ``risk``). Every other column is a feature, in file order.
Prints one JSON summary line (rows, mean score, and AUC / accuracy at 0.5 when there is a label); ``--output``
writes the scored rows as Parquet. Exit code 1 with the error on failure (missing endpoint, ModelError, bad input).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from pyspark.errors import PySparkException
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.config import AwsSettings, SparkSettings
from spark_jobs.endpoint_scoring.endpoint_transformer import BatchingPolicy, EndpointTransformer, RuntimeClientFactory
from spark_jobs.errors import InputDataError, SparkJobsError
from spark_jobs.session import build_session

logger = logging.getLogger(__name__)

PREDICTION = "prediction"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spark_jobs.endpoint_scoring.score", description="Score a split via an endpoint."
    )
    parser.add_argument("--endpoint", required=True, help="an InService endpoint (e.g. credit-risk)")
    parser.add_argument("--input", required=True, help="local file/directory or s3:// prefix")
    parser.add_argument("--output", help="write the scored rows here as Parquet (local directory)")
    parser.add_argument("--format", choices=("auto", "csv", "parquet"), default="auto")
    parser.add_argument("--label", default="risk", help="label column (Parquet) ; CSV: the first column")
    parser.add_argument("--no-label", action="store_true", help="the input holds features only")
    parser.add_argument("--master", default="local[2]", help="Spark master, or 'none' to leave it to spark-submit")
    parser.add_argument("--max-rows", type=int, default=500, help="rows per InvokeEndpoint request")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight per partition")
    return parser.parse_args(argv)


def localize(uri: str, aws: AwsSettings, staging: Path) -> Path:
    """A local path for ``uri``: local paths as they are, an ``s3://`` prefix downloaded object by object."""
    if not uri.startswith("s3://"):
        return Path(uri)
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    s3 = aws.client("s3")
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if not item["Key"].endswith("/")
    ]
    if not keys:
        raise InputDataError(f"no objects under {uri}", fix="pass the prefix the split was written to")
    for key in keys:
        target = staging / key[len(prefix) :].lstrip("/") if key != prefix else staging / Path(key).name
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
    return staging


def read_split(spark: SparkSession, path: Path, fmt: str, label: str | None) -> tuple[DataFrame, list[str]]:
    """The split as a DataFrame (label renamed to ``label``) and its feature columns in order."""
    if not path.exists():
        raise InputDataError(f"input {path} does not exist")
    if fmt == "auto":
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        fmt = "parquet" if any(p.suffix == ".parquet" for p in files) else "csv"
    if fmt == "parquet":
        frame = spark.read.parquet(str(path))
        if label and label in frame.columns:
            frame = frame.withColumnRenamed(label, "label")
    else:
        frame = spark.read.csv(str(path), header=False, inferSchema=True)
        if label:
            frame = frame.withColumnRenamed(frame.columns[0], "label")
    features = [c for c in frame.columns if c != "label"]
    if not features:
        raise InputDataError(f"input {path} has no feature columns")
    return frame.select(*[F.col(c).cast("double") for c in frame.columns]), features


def summarize(scored: DataFrame, has_label: bool) -> dict[str, Any]:
    row = scored.agg(F.count(F.lit(1)).alias("rows"), F.avg(PREDICTION).alias("mean")).collect()[0]
    summary: dict[str, Any] = {"rows": int(row["rows"]), "mean_score": round(float(row["mean"] or 0.0), 6)}
    if has_label and summary["rows"]:
        evaluator = BinaryClassificationEvaluator(rawPredictionCol=PREDICTION, labelCol="label")
        summary["auc"] = round(float(evaluator.evaluate(scored)), 6)
        hits = scored.where((F.col(PREDICTION) >= 0.5) == (F.col("label") >= 0.5)).count()
        summary["accuracy_at_0.5"] = round(hits / summary["rows"], 6)
    return summary


def score(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    aws = AwsSettings.from_env()
    label = None if args.no_label else args.label
    with tempfile.TemporaryDirectory(prefix="sagestack-score-") as staging:
        frame, features = read_split(spark, localize(args.input, aws, Path(staging)), args.format, label)
        transformer = EndpointTransformer(
            args.endpoint,
            features_col=None,
            feature_columns=tuple(features),
            batching=BatchingPolicy(max_rows_per_request=args.max_rows, concurrency=args.concurrency),
            client_factory=RuntimeClientFactory(aws),
        )
        scored = transformer.transform(frame).cache()
        summary = {"endpoint": args.endpoint, "input": args.input, **summarize(scored, "label" in frame.columns)}
        if args.output:
            scored.write.mode("overwrite").parquet(args.output)
            summary["output"] = args.output
        scored.unpersist()
    return summary


def error_line(exc: Exception) -> str:
    """The useful line of an error: executor failures arrive as a PythonException holding the whole traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    typed = [line for line in lines if line.startswith("spark_jobs.errors.")]
    return typed[-1] if typed else (lines[-1] if lines else type(exc).__name__)


def main(argv: list[str] | None = None, session: SparkSession | None = None) -> int:
    """CLI entry; ``session`` reuses an existing SparkSession (left running), else one is built and stopped."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    master = None if args.master == "none" else args.master
    spark = session or build_session(SparkSettings(master=master, app_name="sagestack-score"))
    try:
        summary = score(spark, args)
    except (SparkJobsError, PySparkException) as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        if session is None:
            spark.stop()
    print(json.dumps(summary))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
