"""The car between two commands: actuator lags, grip-limited turning, slip and cornering scrub.

One command is held for 1/15 s and integrated in 4 substeps (the simapp's 60 Hz controllers). Each substep:

* **Steering** follows the command as a first-order lag with ``steering_time_constant`` (the simapp's hinge PD
  controller, p = 1.0 and d = 0.5 on a hinge of negligible inertia, is a lag of d/p = 0.5 s). Its rate is therefore
  limited to ``|command - angle| / steering_time_constant``: at most 120 °/s for a full ±30° swap.
* **Speed** follows the command as a first-order lag with ``speed_time_constant``, its change capped at the tyres'
  grip (``tyre_friction`` × g). The target is lowered while the wheels are turned (*cornering scrub*): the simapp
  drives all four wheels at one angular velocity, so in a turn the front wheels, which roll on a longer arc (1/cos δ),
  are under-driven and brake the car against the rear ones (front P gain half the rear one's).
* **Turning** is a bicycle about the rear axle. The heading turns at the kinematic rate ``v tan δ / wheelbase``;
  the direction of travel (course) turns towards the heading, with the lateral acceleration ``v × course rate``
  capped at ``tyre_friction`` × g. Below the grip limit course and heading coincide and this is the kinematic
  bicycle. Beyond it the car slides outward: it travels on a wider arc than its wheels point and its heading runs
  ahead of its course (sideslip, capped at 90°). The sideslip recovers over about one wheelbase of travel.

Parameters and their sources: docs/deepracer.md#car-dynamics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from containers.rl.simulation.simulator import DT, REAR_AXLE_X, SUBSTEPS, WHEELBASE, Pose, advance

GRAVITY = 9.81
FRONT_TO_REAR_DRIVE = 0.5  # simapp wheel velocity controllers: front p = 0.5, rear p = 1.0
MAX_SIDESLIP = math.pi / 2


@dataclass(frozen=True)
class CarDynamics:
    """Dynamics parameters (docs/deepracer.md#car-dynamics); ``kinematic=True`` restores the lag-free bicycle."""

    speed_time_constant: float = 0.65  # s
    steering_time_constant: float = 0.5  # s
    tyre_friction: float = 0.5  # the simapp's wheel mu1/mu2
    kinematic: bool = False

    @property
    def grip(self) -> float:
        """Largest acceleration the tyres transmit, m/s²."""
        return self.tyre_friction * GRAVITY

    @property
    def max_steering_rate(self) -> float:
        """Degrees per second for a full -30° to +30° swap (the lag's largest rate)."""
        return 60.0 / self.steering_time_constant


@dataclass(frozen=True)
class CarState:
    """Pose plus what the actuators and the tyres carry over from one step to the next."""

    pose: Pose
    speed: float = 0.0  # m/s along the course, at the rear axle
    steering: float = 0.0  # degrees, actual wheel angle
    sideslip: float = 0.0  # radians, heading minus course (positive: the car points left of where it goes)


def scrub_factor(steering_deg: float) -> float:
    """Fraction of the commanded speed the car settles at with the wheels turned ``steering_deg`` (1 when straight)."""
    c = math.cos(math.radians(steering_deg))
    return (1.0 + FRONT_TO_REAR_DRIVE) / (1.0 + FRONT_TO_REAR_DRIVE / max(c, 1e-6))


def step_car(
    state: CarState,
    steering_cmd: float,
    speed_cmd: float,
    dynamics: CarDynamics,
    dt: float = DT,
    substeps: int = SUBSTEPS,
) -> CarState:
    """Hold the (already clipped) command for ``dt`` and return the new state."""
    if dynamics.kinematic:
        return _kinematic(state, steering_cmd, speed_cmd, dt, substeps)
    h = dt / substeps
    steer_blend = 1.0 - math.exp(-h / dynamics.steering_time_constant)
    speed_blend = 1.0 - math.exp(-h / dynamics.speed_time_constant)
    grip = dynamics.grip
    pose, v, steer, beta = state.pose, state.speed, state.steering, state.sideslip
    yaw = pose.yaw
    rx = pose.x + REAR_AXLE_X * math.cos(yaw)
    ry = pose.y + REAR_AXLE_X * math.sin(yaw)
    for _ in range(substeps):
        steer += (steering_cmd - steer) * steer_blend
        dv = (speed_cmd * scrub_factor(steer) - v) * speed_blend
        v = max(0.0, v + max(-grip * h, min(grip * h, dv)))
        yaw_rate = v * math.tan(math.radians(steer)) / WHEELBASE
        course_rate = yaw_rate + beta * v / WHEELBASE  # grip pulls the course back under the heading
        if v > 1e-9:
            limit = grip / v
            course_rate = max(-limit, min(limit, course_rate))
        course = yaw - beta
        mid_course = course + 0.5 * course_rate * h
        rx += v * math.cos(mid_course) * h
        ry += v * math.sin(mid_course) * h
        yaw += yaw_rate * h
        course += course_rate * h
        beta = _wrap(yaw - course)
        if abs(beta) > MAX_SIDESLIP:  # spun sideways: the heading is held at 90° to the course
            beta = math.copysign(MAX_SIDESLIP, beta)
            yaw = course + beta
    yaw = _wrap(yaw)
    pose = Pose(rx - REAR_AXLE_X * math.cos(yaw), ry - REAR_AXLE_X * math.sin(yaw), yaw)
    return CarState(pose, v, steer, beta)


def _kinematic(state: CarState, steering_cmd: float, speed_cmd: float, dt: float, substeps: int) -> CarState:
    return replace(
        state,
        pose=advance(state.pose, steering_cmd, speed_cmd, dt, substeps),
        speed=speed_cmd,
        steering=steering_cmd,
        sideslip=0.0,
    )


def _wrap(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))
