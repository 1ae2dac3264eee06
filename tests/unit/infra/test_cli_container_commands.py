"""`sagestack deepracer ...` reaches the RL container's CLI through a subprocess (infra never imports containers)."""

from __future__ import annotations

from pathlib import Path

from infra.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_deepracer_validate_accepts_the_default_reward_function() -> None:
    assert main(["deepracer", "validate", str(ROOT / "containers/rl/defaults/reward_function.py")]) == 0


def test_deepracer_validate_rejects_a_reward_function_that_returns_a_string(tmp_path: Path) -> None:
    reward = tmp_path / "reward_function.py"
    reward.write_text("def reward_function(params):\n    return 'fast'\n")
    assert main(["deepracer", "validate", str(reward)]) == 1
