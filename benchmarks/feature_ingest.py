"""feature_ingest: a Spark DataFrame ingested into a feature group vs the same DataFrame written as Parquet by Spark.

``SAGESTACK_BENCH_FEATURE_ROWS`` rows (default 1,000,000) x 5 features, ``local[2]``, the stack in-process.
offline_ratio = offline-store rows/s (``FeatureStoreManager.ingest_data(..., ["OfflineStore"])``) / rows/s of
``df.write.parquet`` (goal >= 0.5). online_records_per_s: the same manager into the online store only
(``SAGESTACK_BENCH_FEATURE_ONLINE_ROWS``, default 200,000; goal >= 20000).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks._feature_store import create_group, start_stack
from benchmarks.common import emit
from spark_jobs.config import AwsSettings, SparkSettings
from spark_jobs.feature_store import FeatureStoreManager
from spark_jobs.session import build_session


def frame(spark, rows: int):  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    df = spark.range(rows, numPartitions=4).select(
        F.format_string("c%09d", F.col("id")).alias("customer_id"),
        (F.lit(1_700_000_000.0) + F.col("id") % 86400).alias("event_time"),
        (F.col("id") % 80 + 18).alias("age"),
        (F.col("id") * 0.37 % 10000).alias("balance"),
        F.when(F.col("id") % 2 == 0, "a").otherwise("b").alias("segment"),
    )
    df = df.cache()
    df.count()
    return df


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    rows = int(os.environ.get("SAGESTACK_BENCH_FEATURE_ROWS", "1000000"))
    online_rows = int(os.environ.get("SAGESTACK_BENCH_FEATURE_ONLINE_ROWS", "200000"))
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp) / "stack")
        spark = build_session(SparkSettings(master="local[2]", app_name="bench-feature-ingest", shuffle_partitions=4))
        try:
            manager = FeatureStoreManager(AwsSettings(endpoint_url=stack.url, region="us-east-1"))
            df = frame(spark, rows)
            anchor = timed(lambda: df.write.mode("overwrite").parquet(str(Path(tmp) / "anchor")))
            offline_group = create_group(stack.url, online=False)
            offline = timed(lambda: manager.ingest_data(df, offline_group["FeatureGroupArn"], ["OfflineStore"]))
            online_df = frame(spark, online_rows)
            online_group = create_group(stack.url, offline=False)
            online = timed(lambda: manager.ingest_data(online_df, online_group["FeatureGroupArn"], ["OnlineStore"]))
        finally:
            spark.stop()
            stack.stop()
    emit(
        "feature_ingest",
        f"{rows} rows offline, {online_rows} online, local[2]",
        offline_ratio=anchor / offline,
        online_records_per_s=online_rows / online,
        offline_rows_per_s=rows / offline,
        parquet_rows_per_s=rows / anchor,
    )


if __name__ == "__main__":
    main()
