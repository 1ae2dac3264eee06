"""bench sim_steps_per_second: the simulator alone (vector observation, default reward, random discrete actions)."""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.common import emit

STEPS = 50_000


def steps_per_second(observation: str, steps: int) -> tuple[float, int]:
    """Steps per second of the default track, default reward and seeded random discrete actions (resets included),
    and the episodes run."""
    from containers.rl.simulation.actions import default_action_space
    from containers.rl.simulation.env import DeepRacerEnv, EnvConfig
    from containers.rl.simulation.reward import DEFAULT_REWARD_FILE, RewardFunction
    from containers.rl.simulation.tracks import DEFAULT_TRACK, load_track

    env = DeepRacerEnv(
        load_track(DEFAULT_TRACK), default_action_space(), RewardFunction(DEFAULT_REWARD_FILE),
        EnvConfig(observation=observation),
    )  # fmt: skip
    actions = np.random.default_rng(0).integers(0, len(env.actions.actions), size=steps)
    env.reset(seed=0)
    episodes = 0
    start = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(int(actions[i]))
        if terminated or truncated:
            episodes += 1
            env.reset()
            env.drain_records()
    return steps / (time.perf_counter() - start), episodes


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    from containers.rl.simulation.tracks import DEFAULT_TRACK

    rate, episodes = steps_per_second("vector", STEPS)
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
