"""make_pipeline_wall: wall time of ``python -m pipelines.commands.run_pipeline`` (what ``make pipeline`` runs after
setup).

Starts from no running stack (a fresh data directory and port), so the stack start-up is included, then stops the
stack it started. Goal: seconds <= 300 on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.common import emit, work_dir

PORT = "4611"


def main() -> None:
    root = work_dir("make_pipeline_wall")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_USER_CONFIG"))}
    env.update(SAGESTACK_DATA_DIR=str(root / "stack"), SAGESTACK_PORT=PORT, SAGEMAKER_SUPPRESS_V2_WARNING="1")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.commands.run_pipeline", "--reports", str(root / "reports")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    subprocess.run([sys.executable, "-m", "infra.cli", "down"], env=env, capture_output=True, check=False)
    emit(
        "make_pipeline_wall",
        f"credit-risk pipeline, exit code {result.returncode}, {os.cpu_count()} cores",
        seconds=round(seconds, 1),
    )


if __name__ == "__main__":
    main()
