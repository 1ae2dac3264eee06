"""bench sim_steps_per_second: the simulator alone (vector observation, default reward, random discrete actions)."""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.common import emit

STEPS = 50_000


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    from containers.rl.simulation.actions import default_action_space
    from containers.rl.simulation.env import DeepRacerEnv
    from containers.rl.simulation.reward import DEFAULT_REWARD_FILE, RewardFunction
    from containers.rl.simulation.tracks import DEFAULT_TRACK, load_track

    env = DeepRacerEnv(load_track(DEFAULT_TRACK), default_action_space(), RewardFunction(DEFAULT_REWARD_FILE))
    rng = np.random.default_rng(0)
    actions = rng.integers(0, len(env.actions.actions), size=STEPS)
    env.reset(seed=0)
    episodes = 0
    start = time.perf_counter()
    for i in range(STEPS):
        _, _, terminated, truncated, _ = env.step(int(actions[i]))
        if terminated or truncated:
            episodes += 1
            env.reset()
            env.drain_records()
    seconds = time.perf_counter() - start
    rate = STEPS / seconds
    emit(
        "sim_steps_per_second",
        f"{DEFAULT_TRACK}, vector observation, default reward, random actions, one core; resets included; "
        "the Gazebo simulator runs about 15 steps/s",
        steps_per_s=round(rate),
        steps=STEPS,
        episodes=episodes,
        speedup_vs_gazebo=round(rate / 15.0),
    )


if __name__ == "__main__":
    main()
