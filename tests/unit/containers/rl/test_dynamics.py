"""Known answers of the car dynamics (docs/deepracer.md#car-dynamics)."""

from __future__ import annotations

import itertools
import math

import pytest

from containers.rl.simulation.actions import default_action_space
from containers.rl.simulation.dynamics import CarDynamics, CarState, scrub_factor, step_car
from containers.rl.simulation.env import DeepRacerEnv, EnvConfig
from containers.rl.simulation.simulator import DT, WHEELBASE, Pose, advance

DYN = CarDynamics()


def test_speed_reaches_63_percent_after_one_time_constant():
    state = step_car(CarState(Pose(0.0, 0.0, 0.0)), 0.0, 1.0, DYN, dt=DYN.speed_time_constant, substeps=39)
    assert state.speed == pytest.approx(1.0 - math.exp(-1.0), abs=1e-9)
    assert step_car(state, 0.0, 1.0, DYN, dt=5.0, substeps=300).speed == pytest.approx(1.0, abs=1e-3)


def test_acceleration_is_capped_by_tyre_grip():
    # 0 -> 4 m/s: the lag asks for 6.2 m/s² at first, the tyres give 0.5 g
    state = step_car(CarState(Pose(0.0, 0.0, 0.0)), 0.0, 4.0, DYN)
    assert state.speed == pytest.approx(DYN.grip * DT, rel=1e-9)


def test_steering_rate_limit_holds():
    state = CarState(Pose(0.0, 0.0, 0.0), speed=1.0, steering=-30.0)
    angles = [state.steering]
    for _ in range(15):
        state = step_car(state, 30.0, 1.0, DYN)
        angles.append(state.steering)
    rates = [(b - a) / DT for a, b in itertools.pairwise(angles)]
    assert max(rates) <= DYN.max_steering_rate == pytest.approx(120.0)
    assert all(r > 0 for r in rates)
    # a full-lock swap takes 0.5 s to reach 63 %: -30 + 60 (1 - 1/e)
    half = step_car(CarState(Pose(0.0, 0.0, 0.0), 1.0, -30.0), 30.0, 1.0, DYN, dt=0.5, substeps=30)
    assert half.steering == pytest.approx(-30.0 + 60.0 * (1.0 - math.exp(-1.0)), abs=1e-9)


def test_straight_constant_command_is_the_kinematic_model():
    pose = Pose(1.0, 2.0, 0.3)
    state = CarState(pose, speed=2.0, steering=0.0)
    for _ in range(30):
        state = step_car(state, 0.0, 2.0, DYN)
        pose = advance(pose, 0.0, 2.0)
    assert state.speed == 2.0 and state.sideslip == 0.0
    assert (state.pose.x, state.pose.y, state.pose.yaw) == pytest.approx((pose.x, pose.y, pose.yaw), abs=1e-12)


def test_a_turn_within_grip_does_not_slip():
    # 1 m/s at 15°: 1.6 m/s² of lateral acceleration, below 0.5 g
    state = CarState(Pose(0.0, 0.0, 0.0), speed=1.0, steering=15.0)
    before = state.pose.yaw
    state = step_car(state, 15.0, 1.0, DYN)
    assert state.sideslip == 0.0
    assert state.pose.yaw - before > 0.0  # turns left


def test_a_turn_beyond_grip_slips_outward():
    # 3 m/s at 20°: the wheels ask for 20 m/s², four times the grip
    v, steer = 3.0, 20.0
    demanded = v * v * math.tan(math.radians(steer)) / WHEELBASE
    assert demanded > 4 * DYN.grip
    slide = CarState(Pose(0.0, 0.0, 0.0), speed=v, steering=steer)
    grip_path = CarState(Pose(0.0, 0.0, 0.0), speed=v, steering=steer)
    no_slip = CarDynamics(tyre_friction=100.0)
    for _ in range(3):
        slide = step_car(slide, steer, v, DYN)
        grip_path = step_car(grip_path, steer, v, no_slip)
    assert slide.sideslip > 0.1  # the car points further left than it travels
    assert slide.pose.y < grip_path.pose.y  # it runs wide of the arc its wheels steer
    course = slide.pose.yaw - slide.sideslip
    # the travel direction turned no faster than the grip allows
    assert course <= DYN.grip / min(v, slide.speed) * 3 * DT + 1e-9


def test_cornering_scrub_lowers_the_speed_only_when_turned():
    assert scrub_factor(0.0) == 1.0
    assert scrub_factor(30.0) == pytest.approx(1.5 / (1.0 + 0.5 / math.cos(math.radians(30.0))))
    state = CarState(Pose(0.0, 0.0, 0.0), speed=1.0, steering=30.0)
    state = step_car(state, 30.0, 1.0, DYN, dt=5.0, substeps=300)
    assert state.speed == pytest.approx(scrub_factor(30.0), abs=1e-3)


def _progress_per_step(track, pattern: list[int], dynamics: CarDynamics) -> float:
    env = DeepRacerEnv(track, default_action_space(), lambda params: 1.0, EnvConfig(dynamics=dynamics))
    env.reset(options={"start_ndist": 0.0})
    for _ in range(20):  # get up to speed driving straight
        env.step(5)
    start = env.state.progress
    for action in pattern:
        env.step(action)
    return (env.state.progress - start) / len(pattern)


def test_zig_zag_costs_progress_per_step(oval):
    # default space: action 1 is -30°, 9 is +30° and 5 is straight, all at 1.0 m/s. Flip every 3 steps for 2 s
    straight = _progress_per_step(oval, [5] * 30, DYN)
    zig_zag = _progress_per_step(oval, ([1] * 3 + [9] * 3) * 5, DYN)
    assert zig_zag < 0.97 * straight
