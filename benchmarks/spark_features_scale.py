"""spark_features_scale: the German credit feature job on 5M generated rows; rows/s and the driver's peak memory.

Rows (``SAGESTACK_BENCH_FEATURES_ROWS``, default 5,000,000) are generated once with Spark into a CSV directory
that has the German credit schema (with ``not_known`` cells), then ``spark_jobs.features.cli.run`` writes every
split as CSV, Parquet and recordIO plus the baseline and manifest, ``local[2]``. driver_peak_mb is the sampled peak
RSS of the driver (this Python process + its JVM, which in local mode also hosts the executors); Python workers
are reported apart (workers_peak_mb). Goal: driver_peak_mb <= 2048.
"""

from __future__ import annotations

import os
import shutil
import time

import psutil

from benchmarks.common import PeriodicSampler, emit, work_dir
from spark_jobs.config import AwsSettings, SparkSettings
from spark_jobs.features.cli import parse_args, run
from spark_jobs.session import build_session

CATEGORIES = {
    "sex": ["male", "female"],
    "housing": ["own", "rent", "free"],
    "saving_accounts": ["little", "moderate", "quite rich", "rich", "not_known"],
    "checking_account": ["little", "moderate", "rich", "not_known"],
    "purpose": ["car", "radio/TV", "furniture/equipment", "business", "education", "repairs", "vacation/others"],
}


class PeakSampler(PeriodicSampler):
    def __init__(self) -> None:
        super().__init__(0.2)
        self.driver = self.workers = 0.0
        self._me = psutil.Process()

    def sample(self) -> None:
        driver = self._me.memory_info().rss
        workers = 0
        for child in self._me.children(recursive=True):
            try:
                rss = child.memory_info().rss
                is_jvm = "java" in child.name()
            except psutil.Error:
                continue
            driver, workers = (driver + rss, workers) if is_jvm else (driver, workers + rss)
        self.driver = max(self.driver, driver / 2**20)
        self.workers = max(self.workers, workers / 2**20)


def generate(spark, rows: int, path: str) -> None:
    if os.path.exists(os.path.join(path, "_SUCCESS")):
        return
    exprs = ["cast(rand(1) < 0.7 as int) as risk"]
    for i, (name, levels) in enumerate(CATEGORIES.items()):
        quoted = ",".join(f"'{v}'" for v in levels)
        exprs.append(f"element_at(array({quoted}), cast(floor(rand({10 + i}) * {len(levels)}) as int) + 1) as {name}")
    exprs += [
        "cast(floor(rand(20) * 4) as int) as job",
        "cast(250 + floor(rand(21) * 18000) as int) as credit_amount",
        "cast(4 + floor(rand(22) * 68) as int) as duration",
        "cast(19 + floor(rand(23) * 56) as int) as age",
    ]
    spark.range(rows, numPartitions=8).selectExpr(*exprs).write.mode("overwrite").csv(path, header=True)


def main() -> None:
    rows = int(os.environ.get("SAGESTACK_BENCH_FEATURES_ROWS", "5000000"))
    base = work_dir("spark_features_scale")
    source, output = str(base / f"credit-{rows}"), str(base / "out")
    with PeakSampler() as peak:
        spark = build_session(SparkSettings(master="local[2]", shuffle_partitions=4, driver_memory="1g"))
        generate(spark, rows, source)
        shutil.rmtree(output, ignore_errors=True)
        config = parse_args(["--input", source, "--output", output, "--driver-memory", "1g"])
        start = time.perf_counter()
        run(config, AwsSettings())
        seconds = time.perf_counter() - start
        spark.stop()
    emit(
        "spark_features_scale",
        f"{rows} generated rows -> 3 splits x csv/parquet/recordio + baseline + manifest, local[2], driver 1g",
        driver_peak_mb=peak.driver,
        rows_per_s=rows / seconds,
        seconds=seconds,
        workers_peak_mb=peak.workers,
    )


if __name__ == "__main__":
    main()
