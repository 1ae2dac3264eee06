"""xgboost_train_overhead: the XGBoost container trained through the process runtime vs plain xgboost in-process.

Same CSV file (200k rows x 50 features, label first), same parameters (100 rounds, hist). The anchor reads the file,
builds the DMatrix, trains and saves the model, all in this process. Like the container, it evaluates the training
data after every round (``evals=[(dtrain, "train")]``): the container contract requires that watchlist and its
per-round metric line (docs/algorithms/xgboost.md#metrics), so an anchor without it would skip about 5 % of the work.
The anchor does not print the lines; formatting 100 short lines is negligible. Goal: ratio <= 1.10.

No warm pool: the first container run starts cold and leaves the runtime's standby hosts (pre-started, pre-imported
during the next anchor run), which the second claims, as a user's next job of the same kind would
(docs/performance.md#warm-pools; ``SAGESTACK_STANDBY_HOST_SETS=0`` measures cold starts only).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import xgboost as xgb

from benchmarks.common import classification_csv, emit, stopwatch, work_dir
from infra.runtime.api import ChannelSpec, TrainingOutcome, TrainingSpec
from infra.runtime.images import resolve_image
from infra.runtime.process import ProcessRuntime

ROWS = int(os.environ.get("SAGESTACK_BENCH_ROWS", "200000"))
FEATURES = 50
ROUNDS = 100
PARAMS = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.3}


def anchor(csv_path: Path, out_dir: Path) -> float:
    with stopwatch() as elapsed:
        table = pacsv.read_csv(csv_path, read_options=pacsv.ReadOptions(autogenerate_column_names=True))
        data = np.column_stack([c.to_numpy() for c in table.columns]).astype(np.float32)
        dtrain = xgb.DMatrix(data[:, 1:], label=data[:, 0])
        booster = xgb.train(PARAMS, dtrain, num_boost_round=ROUNDS, evals=[(dtrain, "train")], verbose_eval=False)
        booster.save_model(str(out_dir / "anchor-model.ubj"))
    return elapsed[0]


def container(csv_path: Path, runtime: ProcessRuntime, job_root: Path, warm_pool: str | None = None) -> float:
    channel_dir = job_root / "channel-train"
    channel_dir.mkdir(parents=True, exist_ok=True)
    link = channel_dir / csv_path.name
    if not link.exists():
        os.link(csv_path, link)
    spec = TrainingSpec(
        job_name="bench-xgb-overhead",
        image=resolve_image("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"),
        work_dir=job_root / "job",
        hyperparameters={"num_round": str(ROUNDS), **{k: str(v) for k, v in PARAMS.items()}},
        channels={"algo-1": [ChannelSpec(name="train", source_dir=channel_dir, content_type="text/csv")]},
        warm_pool=warm_pool,
    )
    with stopwatch() as elapsed:
        result = runtime.start_training(spec).wait()
    if result.outcome is not TrainingOutcome.COMPLETED:
        raise SystemExit(f"container training failed: {result.failure_reason}")
    return elapsed[0]


def main() -> None:
    base = work_dir("xgboost_train_overhead")
    csv_path = classification_csv(base / f"train-{ROWS}x{FEATURES}.csv", ROWS, FEATURES)
    runtime = ProcessRuntime(Path(tempfile.mkdtemp(prefix="runtime-", dir=base)))
    try:
        anchor(csv_path, base)  # warm the page cache and the libraries once
        anchors, ours = [], []
        for i in range(2):
            anchors.append(anchor(csv_path, base))
            ours.append(container(csv_path, runtime, base / f"run{i}"))
    finally:
        runtime.shutdown()
        for i in range(2):
            shutil.rmtree(base / f"run{i}", ignore_errors=True)
    container_s, direct_s = min(ours), min(anchors)
    emit(
        "xgboost_train_overhead",
        f"{ROWS // 1000}k rows x {FEATURES} features, {ROUNDS} rounds, hist; best of 2",
        ratio=container_s / direct_s,
        container_s=container_s,
        direct_s=direct_s,
    )


if __name__ == "__main__":
    main()
