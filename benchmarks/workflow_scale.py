"""workflow_scale: the credit-risk pipeline (``make pipeline``) on generated data of the German credit schema at
1k, 10k, 100k and 1M rows: wall time, peak memory and where the time goes.

For each size (``SAGESTACK_BENCH_SCALE_SIZES``, default ``1000,10000,100000,1000000``) rows are generated with a
learnable signal (so the AUC gate passes as on the real data), a fresh stack is started (``infra.cli up`` on its own
data directory and port) and ``pipelines.commands.run_pipeline --data <csv>`` runs the whole pipeline (tuning
included, as ``make pipeline`` runs it). ``seconds_<size>`` is the runner's wall time, ``peak_rss_mb_<size>`` the
sampled peak RSS of the stack's process tree (server, containers, JVMs) plus the runner's, and
``steps_<size>`` names the three slowest steps with their seconds. The anchor is the smallest size: ``growth`` is
the ratio of time per row between the largest and the 10k size (goal: cost grows no faster than linearly past 10k
rows, growth <= 1). Goal: seconds_1m <= 600 on 2 cores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import psutil

from benchmarks.common import PeriodicSampler, emit, work_dir

ROOT = Path(__file__).resolve().parents[1]
SIZES = [int(v) for v in os.environ.get("SAGESTACK_BENCH_SCALE_SIZES", "1000,10000,100000,1000000").split(",")]
BASE_PORT = 4700
LEVELS = {
    "sex": ["male", "female"],
    "housing": ["own", "rent", "free"],
    "saving_accounts": ["little", "moderate", "quite rich", "rich", "not_known"],
    "checking_account": ["little", "moderate", "rich", "not_known"],
    "purpose": ["car", "radio/TV", "furniture/equipment", "business", "education", "repairs", "vacation/others"],
}


def generate(path: Path, rows: int, seed: int = 3) -> Path:
    """Rows of the German credit schema; ``risk`` (1 = good) follows a logistic model of the features."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.choice(levels, size=rows) for name, levels in LEVELS.items()})
    frame["job"] = rng.integers(0, 4, rows)
    frame["credit_amount"] = rng.integers(250, 18_424, rows)
    frame["duration"] = rng.integers(4, 73, rows)
    frame["age"] = rng.integers(19, 76, rows)
    score = (
        1.2
        - frame["duration"] / 30
        - frame["credit_amount"] / 12_000
        + (frame["checking_account"] == "not_known") * 1.2
        - (frame["checking_account"] == "little") * 0.6
        + (frame["age"] - 35) / 40
    )
    frame.insert(0, "risk", (rng.random(rows) < 1 / (1 + np.exp(-score.to_numpy()))).astype(int))
    columns = ["risk", "sex", "job", "housing", "saving_accounts", "checking_account"]
    frame[[*columns, "credit_amount", "duration", "purpose", "age"]].to_csv(path, index=False)
    return path


class TreePeak(PeriodicSampler):
    """Samples the summed RSS of some processes and all their descendants."""

    def __init__(self, *roots: int) -> None:
        super().__init__(0.25)
        self.roots = [psutil.Process(pid) for pid in roots]
        self.peak_mb = 0.0

    def sample(self) -> None:
        total = 0
        for root in self.roots:
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in processes:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
        self.peak_mb = max(self.peak_mb, total / 2**20)


def slowest_steps(env: dict[str, str], name: str) -> str:
    sm = boto3.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    arn = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"][0]["PipelineExecutionArn"]
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    timed = [(s["StepName"], (s["EndTime"] - s["StartTime"]).total_seconds()) for s in steps if "EndTime" in s]
    timed.sort(key=lambda item: -item[1])
    return "/".join(f"{step}:{seconds:.0f}s" for step, seconds in timed[:3])


def run_size(base: Path, rows: int, port: int) -> tuple[float, float, str, int]:
    data = generate(base / f"credit-{rows}.csv", rows)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_USER_CONFIG"))}
    stack_dir = base / f"stack-{rows}"
    shutil.rmtree(stack_dir, ignore_errors=True)  # a stack kept from an earlier run would answer from its step cache
    shutil.rmtree(base / f"reports-{rows}", ignore_errors=True)
    env.update(SAGESTACK_DATA_DIR=str(stack_dir), SAGESTACK_PORT=str(port))
    subprocess.run([sys.executable, "-m", "infra.cli", "up"], env=env, cwd=ROOT, check=True, capture_output=True)
    stack_pid = int((base / f"stack-{rows}" / "stack.pid").read_text())
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    name = f"scale-{rows}"
    command = [sys.executable, "-m", "pipelines.commands.run_pipeline", "--name", name, "--data", str(data)]
    command += ["--reports", str(base / f"reports-{rows}")]
    try:
        start = time.perf_counter()
        runner = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        with TreePeak(stack_pid, runner.pid) as peak:
            output, _ = runner.communicate()
        seconds = time.perf_counter() - start
        if runner.returncode != 0:
            sys.stderr.write(output.decode(errors="replace")[-3000:])
        return seconds, peak.peak_mb, slowest_steps(env, name), runner.returncode
    finally:
        subprocess.run([sys.executable, "-m", "infra.cli", "down"], env=env, cwd=ROOT, capture_output=True, check=False)


def main() -> None:
    base = work_dir("workflow_scale")
    figures: dict[str, float | int | str] = {}
    per_row: dict[int, float] = {}
    for index, rows in enumerate(SIZES):
        seconds, peak_mb, steps, code = run_size(base, rows, BASE_PORT + index)
        label = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}m"
        figures[f"seconds_{label}"] = seconds
        figures[f"peak_rss_mb_{label}"] = peak_mb
        figures[f"steps_{label}"] = steps
        if code != 0:
            figures[f"exit_{label}"] = code
        per_row[rows] = seconds / rows
        print(f"# {rows} rows: {seconds:.1f} s, peak {peak_mb:.0f} MB, slowest {steps}", file=sys.stderr, flush=True)
    largest, reference = max(SIZES), 10_000 if 10_000 in per_row else min(SIZES)
    figures["growth"] = per_row[largest] / per_row[reference] if largest != reference else 1.0
    emit(
        "workflow_scale",
        f"credit-risk pipeline with tuning on generated German-credit rows, {os.cpu_count()} cores; growth: time per "
        f"row at {largest} vs {reference} rows",
        **figures,
    )


if __name__ == "__main__":
    main()
