"""spark_cluster_scaling: the credit-risk feature job on ``local[2]`` against a 2-worker standalone cluster.

Both run on the same 2 cores: the cluster is what a 2-instance ``PySparkProcessor`` forms
(``containers/processing/spark_cluster.py``: a master and one worker per host, each worker 1 core and its memory
share), here started directly so that only the cluster path is measured. Rows: ``SAGESTACK_BENCH_CLUSTER_ROWS``
(default 5,000,000; generated once with Spark, as spark_features_scale does). ``startup_s`` is master start to both
workers registered (goal <= 15 s); ``ratio`` is the cluster's job time over ``local[2]``'s (the point is that the
cluster path works and costs little).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from benchmarks.common import emit, work_dir
from benchmarks.spark_features_scale import generate
from containers.processing.spark_cluster import ClusterLayout, SparkCluster, cluster_conf, host_share
from containers.processing.spark_submit import spark_bin_dir
from infra.runtime.process.process_serving import free_port_pair
from spark_jobs.config import AwsSettings, SparkSettings
from spark_jobs.features.cli import parse_args, run
from spark_jobs.session import build_session

WORKERS = 2


def timed_job(source: str, output: Path, master: str, extra: dict[str, str]) -> float:
    shutil.rmtree(output, ignore_errors=True)
    config = parse_args(["--input", source, "--output", str(output), "--master", master, "--driver-memory", "1g"])
    config = dataclasses.replace(config, spark=dataclasses.replace(config.spark, extra=tuple(extra.items())))
    start = time.perf_counter()
    run(config, AwsSettings())
    seconds = time.perf_counter() - start
    build_session(config.spark).stop()
    return seconds


def main() -> None:
    rows = int(os.environ.get("SAGESTACK_BENCH_CLUSTER_ROWS", "5000000"))
    base = work_dir("spark_cluster_scaling")
    source = str(base / f"credit-{rows}")
    spark = build_session(SparkSettings(master="local[2]", shuffle_partitions=4, driver_memory="1g"))
    generate(spark, rows, source)
    spark.stop()
    local_s = timed_job(source, base / "out-local", "local[2]", {})

    port = free_port_pair()
    cores, memory_mb = host_share(WORKERS)
    memory_mb = min(memory_mb, 2048)
    hosts = tuple(f"algo-{i}" for i in range(1, WORKERS + 1))
    layout = ClusterLayout(hosts, hosts[0], "127.0.0.1", "127.0.0.1", port, port + 1, cores, memory_mb)
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    cluster = SparkCluster(layout, spark_bin_dir())
    try:
        start = time.perf_counter()
        cluster.start(local_workers=WORKERS)  # what the hosts of a job do, from one process
        startup_s = time.perf_counter() - start
        cluster_s = timed_job(source, base / "out-cluster", layout.master_url, cluster_conf(layout, {}))
    finally:
        cluster.stop()
    emit(
        "spark_cluster_scaling",
        f"credit feature job on {rows} rows; local[2] {local_s:.1f} s vs master + {WORKERS} workers x {cores} core, "
        f"{memory_mb} MB on the same machine",
        startup_s=startup_s,
        ratio=cluster_s / local_s,
        local_s=local_s,
        cluster_s=cluster_s,
        rows=rows,
    )


if __name__ == "__main__":
    main()
