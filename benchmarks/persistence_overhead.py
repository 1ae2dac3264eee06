"""persistence_overhead: job_overhead's training job and invoke_overhead's latency with the durable state on vs off.

Two in-process stacks side by side, one with ``persistence=True`` (records in SQLite, the S3 mirror running), one
with ``persistence=False`` (everything in memory, as before issue 18); the same XGBoost training job runs on each in
turn (median of 9, the order alternating), and the same endpoint answers one-row CSV requests on each (p50 of
10 x 2,000, alternating which stack goes first: at fewer, run-to-run noise was as wide as the goal). Goal: ratio
<= 1.05, ``ratio`` being the worse of the two (``job_ratio``, ``invoke_ratio``).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks.common import emit, percentile, work_dir
from benchmarks.invoke_overhead import deploy, model_archive
from benchmarks.job_overhead import through_stack, upload_training_data
from benchmarks.xgboost_serving import http_latency
from infra.config import StackSettings
from infra.control_plane.server import LocalStack

REPEATS = 9
INVOKE_ROUNDS = 10


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir("persistence_overhead")))
    stacks = {
        on: LocalStack(StackSettings(data_dir=base / f"stack-{on}", port=0, persistence=bool(on))) for on in (1, 0)
    }
    urls = {on: stack.start() for on, stack in stacks.items()}
    archive, x = model_archive(base)
    try:
        upload_training_data(urls[0])  # moto is shared by the two stacks of this process
        jobs: dict[int, list[float]] = {1: [], 0: []}
        for on in (1, 0):
            through_stack(urls[on])  # warm up
        for repeat in range(REPEATS):
            for on in _order(repeat):
                jobs[on].append(through_stack(urls[on]))
        latency: dict[int, list[float]] = {1: [], 0: []}
        edges = {}
        for on in (1, 0):
            name = deploy(urls[on], archive) if on else _deploy_again(urls[on], archive)
            edges[on] = f"{urls[on]}/endpoints/{name}/invocations"
            http_latency(edges[on], x[:50])
        for repeat in range(INVOKE_ROUNDS):
            for on in _order(repeat):
                latency[on] += http_latency(edges[on], x[:500])
    finally:
        for stack in stacks.values():
            stack.stop()
    job_ratio = statistics.median(jobs[1]) / statistics.median(jobs[0])
    invoke_ratio = percentile(latency[1], 50) / percentile(latency[0], 50)
    emit(
        "persistence_overhead",
        "persistence on vs off, same run: job = CreateTrainingJob->Completed median of 9, invoke = one-row CSV p50",
        ratio=max(job_ratio, invoke_ratio),
        job_ratio=job_ratio,
        invoke_ratio=invoke_ratio,
        job_s_on=statistics.median(jobs[1]),
        job_s_off=statistics.median(jobs[0]),
        invoke_p50_ms_on=percentile(latency[1], 50) * 1e3,
        invoke_p50_ms_off=percentile(latency[0], 50) * 1e3,
    )


def _order(repeat: int) -> tuple[int, int]:
    """On first, then off first: a stack measured always first (or last) would carry the machine's drift."""
    return (1, 0) if repeat % 2 == 0 else (0, 1)


def _deploy_again(url: str, archive: Path) -> str:
    """invoke_overhead's ``deploy`` creates its bucket; the second stack (same moto) gets a bucket of its own."""
    from benchmarks import invoke_overhead

    invoke_overhead.BUCKET = f"{invoke_overhead.BUCKET}-off"
    return deploy(url, archive)


if __name__ == "__main__":
    main()
