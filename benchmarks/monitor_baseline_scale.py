"""monitor_baseline_scale: the Model Monitor baselining job on 5M rows x 20 columns of mixed types.

A seeded CSV with a header (12 Fractional, 4 Integral and 4 String columns, ~1% missing cells in a few columns) is
written with pyarrow under the bench work dir and reused; ``SAGESTACK_BENCH_MONITOR_ROWS`` overrides the row count.
The analyzer runs as ``python -m containers.model_monitor`` with ``SAGEMAKER_BASE_DIR`` and the baselining
environment; ``seconds`` is its wall time and ``peak_rss_mb`` its own peak RSS (from ``wait4``). Goal: <= 120 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from benchmarks.common import ROOT, emit, work_dir

ROWS = int(os.environ.get("SAGESTACK_BENCH_MONITOR_ROWS", "5000000"))
CHUNK = 500_000
CATEGORIES = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])


def chunk_table(rng: np.random.Generator, rows: int) -> pa.Table:
    columns: dict[str, pa.Array] = {}
    for i in range(12):
        values = rng.normal(loc=i, scale=1 + i, size=rows).round(4)
        mask = rng.uniform(size=rows) < 0.01 if i % 4 == 0 else None
        columns[f"f{i}"] = pa.array(values, mask=mask)
    for i in range(4):
        columns[f"i{i}"] = pa.array(rng.integers(0, 10 ** (i + 1), size=rows))
    for i in range(4):
        picks = CATEGORIES[rng.integers(0, 3 + i, size=rows)]
        mask = rng.uniform(size=rows) < 0.01 if i == 0 else None
        columns[f"s{i}"] = pa.array(picks, mask=mask)
    return pa.table(columns)


def dataset(path: Path, rows: int) -> Path:
    if path.exists():
        return path
    rng = np.random.default_rng(11)
    tmp = path.with_suffix(".tmp")
    writer = None
    for start in range(0, rows, CHUNK):
        table = chunk_table(rng, min(CHUNK, rows - start))
        if writer is None:
            writer = pacsv.CSVWriter(tmp, table.schema, write_options=pacsv.WriteOptions(quoting_style="none"))
        writer.write_table(table)
    assert writer is not None
    writer.close()
    tmp.rename(path)
    return path


def run(base: Path) -> tuple[float, float]:
    env = dict(
        os.environ,
        SAGEMAKER_BASE_DIR=str(base),
        PYTHONPATH=str(ROOT),
        dataset_format=json.dumps({"csv": {"header": True, "output_columns_position": "START"}}),
        dataset_source="/opt/ml/processing/input/baseline_dataset_input",
        output_path="/opt/ml/processing/output",
        publish_cloudwatch_metrics="Disabled",
    )
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "containers.model_monitor"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"analyzer failed: {(base / 'output' / 'message').read_text()[:2000]}")
    return elapsed, usage.ru_maxrss / 1024.0


def main() -> None:
    root = work_dir("monitor_baseline_scale")
    data = dataset(root / f"baseline_{ROWS}.csv", ROWS)
    base = root / "host"
    shutil.rmtree(base, ignore_errors=True)
    channel = base / "processing" / "input" / "baseline_dataset_input"
    channel.mkdir(parents=True)
    os.link(data, channel / "data.csv")
    seconds, peak = run(base)
    statistics = json.loads((base / "processing" / "output" / "statistics.json").read_text())
    assert statistics["dataset"]["item_count"] == ROWS
    size_mb = data.stat().st_size / 1024**2
    emit(
        "monitor_baseline_scale",
        f"baselining job, {ROWS} rows x 20 columns (12 Fractional, 4 Integral, 4 String), {size_mb:.0f} MB CSV",
        seconds=seconds,
        peak_rss_mb=peak,
        rows=ROWS,
    )


if __name__ == "__main__":
    main()
