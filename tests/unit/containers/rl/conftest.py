from __future__ import annotations

from pathlib import Path

import pytest

from containers.rl.tracks import Track, load_track


@pytest.fixture(scope="session")
def oval() -> Track:
    return load_track("oval")


def write_reward(tmp_path: Path, body: str, name: str = "reward_function.py") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path
