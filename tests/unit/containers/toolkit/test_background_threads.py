"""A container's background readers end before its interpreter does (containers.toolkit.threads.start_background).

A daemon thread still inside Arrow's C++ code at exit aborted the process ("terminate called without an active
exception", exit code -6), losing the job's own exit code: a consumer that stops early, or a job that fails before
reading what was prefetched, must still exit with its own code, its readers stopped in order.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys, time
from pathlib import Path
from containers.toolkit.channels import read_ahead

marker = Path(sys.argv[1])

def pieces():
    try:
        for number in range(1000):
            time.sleep(0.05)  # a piece being parsed
            yield number
    finally:
        marker.write_text("ended")

reader = read_ahead(pieces(), depth=2)
first = next(reader)  # the consumer stops early and keeps its reader: nothing closes it before exit
sys.exit(3 if first == 0 else 4)
"""

PREFETCH = """
import sys
from pathlib import Path
import numpy as np
from containers.xgboost.csv_float32 import prefetch_csv_float32

path = Path(sys.argv[1])
np.savetxt(path, np.random.default_rng(0).random((200_000, 20)), delimiter=",", fmt="%.6f")
prefetch_csv_float32([path])
sys.exit(5)  # the job fails before it reads what was prefetched
"""


def _run(script: str, argument: Path) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[4]
    return subprocess.run(
        [sys.executable, "-c", script, str(argument)], cwd=root, capture_output=True, text=True, check=False
    )


def test_a_reader_the_consumer_left_is_stopped_and_joined_before_exit(tmp_path):
    marker = tmp_path / "marker"
    done = _run(SCRIPT, marker)
    assert done.returncode == 3, done.stderr
    assert marker.read_text() == "ended"  # the producer was stopped and its source closed, not killed mid-piece


def test_a_prefetch_nobody_reads_does_not_abort_the_exit(tmp_path):
    for _ in range(3):
        done = _run(PREFETCH, tmp_path / "train.csv")
        assert done.returncode == 5, done.stderr
        assert "terminate called" not in done.stderr
