"""bench camera_sim_steps_per_second: the simulator with the camera observation (textured 160 x 120 frames plus the
car dynamics, default reward, random discrete actions, one core), beside the vector observation in the same run."""

from __future__ import annotations

import os

from benchmarks.common import emit
from benchmarks.sim_steps_per_second import steps_per_second

STEPS = 20_000


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    vector_rate, _ = steps_per_second("vector", STEPS)
    camera_rate, episodes = steps_per_second("camera", STEPS)
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
