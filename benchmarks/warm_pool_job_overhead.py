"""warm_pool_job_overhead: the ``job_overhead`` job on a managed warm pool, and XGBoost training on a warm pool.

``added_s``: CreateTrainingJob -> Completed through the in-process stack for the ``job_overhead`` job (built-in
XGBoost, 100 rows) with ``KeepAlivePeriodInSeconds`` set, each run taking over the pool of the one before (its host
pre-started and pre-imported while the client waited), minus the same job run directly through the process runtime
(cold: a new interpreter and its imports), medians of 5 in this run. ``cold_added_s`` is the same difference without
a warm pool. ``xgboost_ratio``: ``xgboost_train_overhead``'s job on a warm host against plain xgboost in-process on
the same CSV (best of 2). Goals: added_s <= 0.1, xgboost_ratio <= 1.05 (docs/performance.md#warm-pools).

The runtimes keep no standby hosts here (``SAGESTACK_STANDBY_HOST_SETS=0``): "cold" stays cold, and the only
pre-started hosts are the warm pool's.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks import xgboost_train_overhead as xgb_bench
from benchmarks.common import classification_csv, emit, work_dir
from benchmarks.job_overhead import REPEATS, direct, rows_csv, through_stack, upload_training_data
from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from infra.runtime.process import ProcessRuntime

KEEP_ALIVE_SECONDS = 600


def wait_for_warm_host(timeout: float = 60.0) -> None:
    """Until a pre-started host process (``ps`` shows its warm-start entry) is waiting for a job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in psutil.process_iter(["cmdline"]):
            if "containers.toolkit.warm_start" in (process.info["cmdline"] or []):
                time.sleep(0.5)  # past its imports (a claim would otherwise wait for them)
                return
        time.sleep(0.05)
    raise RuntimeError("no warm host was pre-started")


def stack_figures(base: Path, data_dir: Path) -> tuple[float, float, float]:
    stack = LocalStack(StackSettings(data_dir=base / "stack", port=0))
    url = stack.start()
    runtime = ProcessRuntime(base / "runtime")
    try:
        upload_training_data(url)
        through_stack(url)
        cold = [through_stack(url) for _ in range(REPEATS)]
        direct(runtime, data_dir, base / "direct")
        directs = [direct(runtime, data_dir, base / "direct") for _ in range(REPEATS)]
        through_stack(url, KEEP_ALIVE_SECONDS)  # opens the pool
        warm = []
        for _ in range(REPEATS):
            wait_for_warm_host()
            warm.append(through_stack(url, KEEP_ALIVE_SECONDS))
    finally:
        runtime.shutdown()
        stack.stop()
    return statistics.median(warm), statistics.median(cold), statistics.median(directs)


def xgboost_ratio(base: Path) -> tuple[float, float]:
    csv_path = classification_csv(
        work_dir("xgboost_train_overhead") / f"train-{xgb_bench.ROWS}x{xgb_bench.FEATURES}.csv",
        xgb_bench.ROWS,
        xgb_bench.FEATURES,
    )
    runtime = ProcessRuntime(base / "xgb-runtime")
    try:
        xgb_bench.anchor(csv_path, base)
        xgb_bench.container(csv_path, runtime, base / "xgb-open", warm_pool="bench")  # cold; pre-starts the next
        anchors, ours = [], []
        for i in range(2):
            anchors.append(xgb_bench.anchor(csv_path, base))
            wait_for_warm_host()
            ours.append(xgb_bench.container(csv_path, runtime, base / f"xgb-{i}", warm_pool="bench"))
    finally:
        runtime.shutdown()
    return min(ours), min(anchors)


def main() -> None:
    os.environ["SAGESTACK_STANDBY_HOST_SETS"] = "0"  # read by every runtime this run starts
    base = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir("warm_pool_job_overhead")))
    data_dir = base / "data"
    data_dir.mkdir()
    (data_dir / "train.csv").write_bytes(rows_csv())
    warm_s, cold_s, direct_s = stack_figures(base, data_dir)
    xgb_warm_s, xgb_anchor_s = xgboost_ratio(base)
    emit(
        "warm_pool_job_overhead",
        f"median of {REPEATS}; job_overhead's job on a warm pool through the stack vs run directly (cold); "
        "xgboost_ratio: xgboost_train_overhead's job on a warm host vs xgboost in-process, best of 2",
        added_s=warm_s - direct_s,
        warm_stack_s=warm_s,
        cold_added_s=cold_s - direct_s,
        direct_s=direct_s,
        xgboost_ratio=xgb_warm_s / xgb_anchor_s,
    )


if __name__ == "__main__":
    main()
