"""bench time_to_full_lap: wall time until an evaluation completes 100 % on the default track with the defaults, but
the vector observation (``observation_type=vector``; the camera's figure is ``camera_time_to_full_lap``)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import emit

GOAL_S = 600.0


def main() -> None:
    from containers.rl.configuration.hyperparams import load_hyperparameters_file
    from containers.rl.configuration.run_config import RunConfig
    from containers.rl.learning.trainer import Trainer
    from containers.rl.local_cli import DEFAULTS_DIR
    from containers.rl.simulation.actions import default_action_space
    from containers.rl.simulation.reward import DEFAULT_REWARD_FILE
    from containers.rl.simulation.tracks import load_track

    # the make-deepracer defaults, but stop at the first iteration whose evaluations all complete the lap
    hp = load_hyperparameters_file(
        DEFAULTS_DIR / "hyperparameters.json",
        {"stop_after_full_evals": 1, "term_cond_max_episodes": 1000, "max_time_minutes": GOAL_S / 60.0 * 2,
         "num_workers": 2, "observation_type": "vector"},
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        start = time.perf_counter()
        cfg = RunConfig(load_track(hp.world_name), default_action_space(), DEFAULT_REWARD_FILE, hp, out / "model", out)
        result = Trainer(cfg).train()
        seconds = time.perf_counter() - start
    last = result.iterations[-1]
    reached = last.eval_completion >= 100.0
    emit(
        "time_to_full_lap",
        f"{hp.world_name} {cfg.track.length:.1f} m, vector observation (fast, privileged), centre-line reward"
        ", 10-action console space, PPO, "
        f"{hp.num_episodes_between_training} episodes/iteration, 2 workers; first iteration whose "
        f"{hp.min_eval_trials} evaluation episodes all reach 100 %"
        + ("" if reached else "; NOT reached before the time limit")
        + "; the console took about 45 minutes",
        seconds=round(seconds, 1),
        env_steps=result.total_steps,
        iterations=len(result.iterations),
        eval_completion=round(last.eval_completion, 1),
        ratio_vs_console=round(seconds / 2700.0, 4),
    )


if __name__ == "__main__":
    main()
