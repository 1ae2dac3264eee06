from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from containers.rl.simulation.actions import ActionSpace, default_action_space, parse_model_metadata
from containers.rl.simulation.env import DeepRacerEnv
from containers.rl.simulation.params import PARAM_KEYS, build_params
from containers.rl.simulation.simulator import DT, REFERENCE_AHEAD, Pose, TrackGeometry, advance, wheel_centres

HALF = 1.83  # the oval's radius: its bottom straight lies on y = -1.83, driven towards +x


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, params: dict) -> float:
        self.calls.append(params)
        return 1.0


def continuous() -> ActionSpace:
    return parse_model_metadata(
        {
            "action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 1.5}},
            "action_space_type": "continuous",
        }
    )


def params_at(oval, x: float, y: float, yaw_deg: float) -> dict:
    geometry = TrackGeometry(oval)
    yaw = math.radians(yaw_deg)
    pose = Pose(x - REFERENCE_AHEAD * math.cos(yaw), y - REFERENCE_AHEAD * math.sin(yaw), yaw)
    env = DeepRacerEnv(oval, default_action_space(), Recorder())
    env.reset()
    proj = geometry.project(x, y)
    return build_params(geometry, pose, proj, env.state, 0.0, 1.0, False, 0.0)


def test_geometry_on_the_straight(oval):
    p = params_at(oval, 0.0, -HALF + 0.2, 0.0)
    assert p["x"] == pytest.approx(0.0) and p["y"] == pytest.approx(-HALF + 0.2)
    assert p["distance_from_center"] == pytest.approx(0.2, abs=1e-9)
    assert p["is_left_of_center"] is True  # ccw loop: the inner border is on the left
    assert p["track_width"] == pytest.approx(0.76, abs=1e-6)
    assert p["projection_distance"] == pytest.approx(2.0, abs=1e-9)  # the route starts at x = -2
    prev, nxt = p["closest_waypoints"]
    wp = p["waypoints"]
    assert nxt == prev + 1 and wp[prev][0] <= 0.0 <= wp[nxt][0]
    right = params_at(oval, 1.0, -HALF - 0.3, 90.0)
    assert right["is_left_of_center"] is False and right["distance_from_center"] == pytest.approx(0.3, abs=1e-9)
    assert right["heading"] == pytest.approx(90.0)


def test_heading_range_and_top_straight(oval):
    p = params_at(oval, 0.0, HALF, 180.0)
    assert p["heading"] == pytest.approx(180.0)  # (-180, 180]
    assert p["distance_from_center"] == pytest.approx(0.0, abs=1e-9)
    assert p["projection_distance"] == pytest.approx(4.0 + math.pi * 1.83 + 2.0, rel=2e-3)


def test_params_keys_and_types(oval):
    recorder = Recorder()
    env = DeepRacerEnv(oval, default_action_space(), recorder)
    env.reset()
    env.step(5)
    p = recorder.calls[0]
    assert tuple(p) == PARAM_KEYS and len(p) == 27
    types = {
        "all_wheels_on_track": bool, "x": float, "y": float, "heading": float, "steering_angle": float,
        "speed": float, "progress": float, "steps": float, "distance_from_center": float,
        "is_left_of_center": bool, "track_width": float, "track_length": float, "waypoints": list,
        "closest_waypoints": list, "is_reversed": bool, "is_offtrack": bool, "is_crashed": bool,
        "projection_distance": float, "closest_objects": list, "objects_location": list,
        "objects_left_of_center": list, "objects_distance": list, "objects_distance_from_center": list,
        "objects_heading": list, "objects_speed": list, "object_in_camera": bool, "sim_time": float,
    }  # fmt: skip
    for key, kind in types.items():
        assert type(p[key]) is kind, key
    assert all(isinstance(w, tuple) and len(w) == 2 for w in p["waypoints"])
    assert p["waypoints"][0] == p["waypoints"][-1]  # loops repeat the first point
    assert p["closest_objects"] == [0, 0] and p["objects_location"] == []


def test_first_reward_call_sees_steps_2_and_commanded_action(oval):
    recorder = Recorder()
    env = DeepRacerEnv(oval, default_action_space(), recorder)
    _, info = env.reset(options={"start_ndist": 0.0})
    assert info["steps"] == 1 and recorder.calls == []  # the prepare step does not call the reward function
    assert info["progress"] == pytest.approx(100 * REFERENCE_AHEAD / oval.length)
    env.step(5)  # straight at 1.0 m/s
    p = recorder.calls[0]
    assert p["steps"] == 2.0 and p["speed"] == 1.0 and p["steering_angle"] == 0.0
    # the car starts at rest and its speed lags the command (tau = 0.65 s, 4 substeps of 1/60 s): it covers
    # sum_k (1 - e^(-k h / tau)) h, not the full DT * 1.0 m/s of the lag-free model
    h = DT / 4
    travelled = sum((1.0 - math.exp(-k * h / 0.65)) * h for k in range(1, 5))
    assert p["x"] == pytest.approx(-2.0 + REFERENCE_AHEAD + travelled, abs=1e-9)
    assert p["progress"] == pytest.approx(100 * (REFERENCE_AHEAD + travelled) / oval.length, rel=1e-6)
    assert p["sim_time"] == pytest.approx(DT)  # the prepare step holds the car; the clock starts at the first move


def test_kinematic_turn_radius():
    # bicycle model: radius = wheelbase / tan(steering) about the rear axle
    pose = Pose(0.0, 0.0, 0.0)
    for _ in range(15):
        pose = advance(pose, 30.0, 1.0)
    expected = math.degrees(1.0 * math.tan(math.radians(30)) / 0.164) % 360.0
    assert math.degrees(pose.yaw) % 360.0 == pytest.approx(expected, rel=1e-6)


def test_one_wheel_off_is_not_off_track(oval):
    def wheels(offset: float) -> np.ndarray:
        pose = Pose(0.0, -HALF + offset, 0.0)
        return oval.raster.contains(*wheel_centres(pose))

    assert wheels(0.0).all()
    left_off = wheels(0.38 + 0.04)  # left wheels beyond the inner border, right wheels on the road
    assert not left_off.all() and left_off.any()
    assert not wheels(0.38 + 0.081 + 0.05).any()


def test_driving_straight_ends_off_track(oval):
    recorder = Recorder()
    env = DeepRacerEnv(oval, default_action_space(), recorder)
    env.reset(options={"start_ndist": 0.0})
    for _ in range(400):
        _, _, terminated, truncated, info = env.step(5)
        if terminated or truncated:
            break
    assert info["status"] == "off_track"
    assert recorder.calls[-1]["is_offtrack"] is True  # the terminal step is rewarded too
    assert recorder.calls[-2]["is_offtrack"] is False
    record = env.drain_records()[0][0]
    assert record["episode_status"] == "Off track" and record["completion_percentage"] == int(info["progress"])


def test_driving_backwards_ends_reversed(oval):
    env = DeepRacerEnv(oval, default_action_space(), Recorder())
    env.reset(options={"start_ndist": 0.1})
    env.pose = Pose(env.pose.x, env.pose.y, env.pose.yaw + math.pi)
    statuses = [env.step(4)[4]["status"] for _ in range(15)]
    assert statuses[:14] == ["in_progress"] * 14 and statuses[14] == "reversed"


def pure_pursuit(env: DeepRacerEnv) -> np.ndarray:
    proj = env.state.last_projection
    xs, ys = env.geometry.ahead(proj.ndist, np.array([0.5]))
    ref = env.pose.reference_point()
    bearing = math.atan2(ys[0] - ref[1], xs[0] - ref[0]) - env.pose.yaw
    bearing = math.atan2(math.sin(bearing), math.cos(bearing))
    return np.array([max(-1.0, min(1.0, math.degrees(bearing) / 30.0)), 0.0])


@pytest.mark.parametrize("start", [0.0, 0.37])
def test_a_full_lap_reaches_100_percent_from_any_start(oval, start):
    recorder = Recorder()
    env = DeepRacerEnv(oval, continuous(), recorder)
    env.reset(options={"start_ndist": start})
    for _ in range(2000):
        _, _, terminated, truncated, info = env.step(pure_pursuit(env))
        if terminated or truncated:
            break
    assert info["status"] == "lap_complete" and info["progress"] == 100.0
    progress = [p["progress"] for p in recorder.calls]
    assert all(b >= a for a, b in itertools.pairwise(progress))
    # about one lap of distance at 1.0 m/s
    assert len(recorder.calls) * DT == pytest.approx(oval.length / 1.0, rel=0.05)


def test_round_robin_start_advances_after_each_episode(oval):
    env = DeepRacerEnv(oval, default_action_space(), Recorder())
    starts = []
    for _ in range(3):
        env.reset()
        starts.append(env.state.start_ndist)
        while not any(env.step(5)[2:4]):
            pass
    assert starts == pytest.approx([0.0, 0.05, 0.10])


def test_reversed_direction_drives_the_route_backwards(oval):
    from containers.rl.simulation.env import EnvConfig

    recorder = Recorder()
    env = DeepRacerEnv(oval, continuous(), recorder, EnvConfig(reverse_direction=True))
    env.reset(options={"start_ndist": 0.0})
    assert math.cos(env.pose.yaw) < -0.99  # facing -x at the route's start
    for _ in range(2000):
        _, _, terminated, truncated, info = env.step(pure_pursuit(env))
        if terminated or truncated:
            break
    assert info["status"] == "lap_complete"
    first = recorder.calls[0]
    assert first["is_reversed"] is True
    assert first["waypoints"][0] == (pytest.approx(-2.0), pytest.approx(-1.83))
    # driving clockwise, the inner border (still columns 2-3) is on the right: on the bottom straight (y = -1.83,
    # driven towards -x) left of centre means below it
    straight = [
        p for p in recorder.calls if -1.5 < p["x"] < 1.5 and p["y"] < -1.0 and p["distance_from_center"] > 0.005
    ]
    assert straight
    assert all(p["is_left_of_center"] == (p["y"] < -1.83) for p in straight)
