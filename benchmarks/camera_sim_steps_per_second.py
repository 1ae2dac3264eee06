"""bench camera_sim_steps_per_second: the simulator with the camera observation (textured 160 x 120 frames plus the
car dynamics, default reward, random discrete actions, one core), beside the vector observation in the same run."""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.common import emit

STEPS = 20_000


def _steps_per_second(observation: str) -> tuple[float, int]:
    from containers.rl.simulation.actions import default_action_space
    from containers.rl.simulation.env import DeepRacerEnv, EnvConfig
    from containers.rl.simulation.reward import DEFAULT_REWARD_FILE, RewardFunction
    from containers.rl.simulation.tracks import DEFAULT_TRACK, load_track

    env = DeepRacerEnv(
        load_track(DEFAULT_TRACK), default_action_space(), RewardFunction(DEFAULT_REWARD_FILE),
        EnvConfig(observation=observation),
    )  # fmt: skip
    actions = np.random.default_rng(0).integers(0, len(env.actions.actions), size=STEPS)
    env.reset(seed=0)
    episodes = 0
    start = time.perf_counter()
    for i in range(STEPS):
        _, _, terminated, truncated, _ = env.step(int(actions[i]))
        if terminated or truncated:
            episodes += 1
            env.reset()
            env.drain_records()
    return STEPS / (time.perf_counter() - start), episodes


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    vector_rate, _ = _steps_per_second("vector")
    camera_rate, episodes = _steps_per_second("camera")
    emit(
        "camera_sim_steps_per_second",
        "reinvent_like, camera observation (textured 160x120 grayscale frame, walls, haze, vignette) with the car "
        "dynamics, default reward, random actions, one core; resets included; anchor: the vector observation in the "
        "same run; the Gazebo simulator runs about 15 steps/s",
        steps_per_s=round(camera_rate),
        vector_steps_per_s=round(vector_rate),
        ratio_vs_vector=round(camera_rate / vector_rate, 3),
        steps=STEPS,
        episodes=episodes,
        speedup_vs_gazebo=round(camera_rate / 15.0),
    )


if __name__ == "__main__":
    main()
