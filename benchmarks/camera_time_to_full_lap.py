"""bench camera_time_to_full_lap: wall time until an evaluation completes 100 % from the camera, on the default
(re:Invent 2018-like) track with the default hyperparameters, PPO and the console's shallow network.

``SAGESTACK_BENCH_MAX_MINUTES`` shortens the run (default: twice the goal); a run stopped by it reports the best
evaluation completion reached and when.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import emit

GOAL_S = 1800.0
CONSOLE_S = 2700.0  # the console took about 45 minutes to a first slow lap


def main() -> None:
    from containers.rl.configuration.hyperparams import load_hyperparameters_file
    from containers.rl.configuration.run_config import RunConfig
    from containers.rl.learning.trainer import IterationResult, Trainer
    from containers.rl.local_cli import DEFAULTS_DIR
    from containers.rl.simulation.actions import load_model_metadata
    from containers.rl.simulation.reward import DEFAULT_REWARD_FILE
    from containers.rl.simulation.tracks import load_track

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    max_minutes = float(os.environ.get("SAGESTACK_BENCH_MAX_MINUTES", GOAL_S / 60.0 * 2))
    # the make-deepracer defaults (camera, console action space and network), stopped at the first full evaluation
    hp = load_hyperparameters_file(
        DEFAULTS_DIR / "hyperparameters.json",
        {"stop_after_full_evals": 1, "term_cond_max_episodes": 100000, "max_time_minutes": max_minutes},
    )  # fmt: skip
    best: list[tuple[float, float]] = []  # (eval completion, seconds) of each new best
    start = time.perf_counter()

    def note(result: IterationResult) -> None:
        if not best or result.eval_completion > best[-1][0]:
            best.append((result.eval_completion, time.perf_counter() - start))

    actions = load_model_metadata(DEFAULTS_DIR / "model_metadata.json")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cfg = RunConfig(load_track(hp.world_name), actions, DEFAULT_REWARD_FILE, hp, out / "model", out)
        result = Trainer(cfg, on_iteration=note).train()
        seconds = time.perf_counter() - start
    last = result.iterations[-1]
    reached = last.eval_completion >= 100.0
    emit(
        "camera_time_to_full_lap",
        f"{hp.world_name} {cfg.track.length:.1f} m, camera observation ({hp.stack_size} frame(s) of 160x120), "
        f"{actions.neural_network}, centre-line reward, console action space, PPO, "
        f"{hp.num_episodes_between_training} episodes/iteration, {hp.workers} simulator worker processes; first "
        f"iteration whose {hp.min_eval_trials} evaluation episodes all reach 100 %"
        + ("" if reached else f"; NOT reached within {max_minutes:g} minutes")
        + "; the console took about 45 minutes",
        seconds=round(seconds, 1),
        env_steps=result.total_steps,
        iterations=len(result.iterations),
        eval_completion=round(last.eval_completion, 1),
        best_eval_completion=round(best[-1][0], 1) if best else 0.0,
        best_at_s=round(best[-1][1], 1) if best else 0.0,
        ratio_vs_console=round(seconds / CONSOLE_S, 4),
    )


if __name__ == "__main__":
    main()
