from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from containers.rl.simulation.tracks import Track, load_track


@pytest.fixture(scope="session")
def oval() -> Track:
    return load_track("oval")


def write_reward(tmp_path: Path, body: str, name: str = "reward_function.py") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


ROOT = Path(__file__).resolve().parents[4]


def run_container(base: Path) -> subprocess.CompletedProcess[str]:
    """``python -m containers.rl train`` under the /opt/ml layout rooted at ``base`` (the image's entry)."""
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "containers.rl", "train"], env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
