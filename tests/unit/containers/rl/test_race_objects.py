"""Object avoidance and head-to-bot: placements, ``objects_*`` params and crashes on constructed scenes (oval)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from containers.rl.configuration.hyperparams import parse_hyperparameters, race_config
from containers.rl.simulation.actions import default_action_space
from containers.rl.simulation.camera import OBJECT, Camera
from containers.rl.simulation.env import VECTOR_SIZE, DeepRacerEnv, EnvConfig
from containers.rl.simulation.race_objects import RaceConfig, RaceObjects
from containers.rl.simulation.simulator import Pose, TrackGeometry
from containers.toolkit.errors import UserError

# the oval's bottom straight: centre y = -1.83 from x = -2 (the route's start) to x = 2, driven towards +x, 0.76 m wide;
# the inner lane (half-way to the inner border, on the left) is y = -1.64, the outer lane y = -2.02
INNER, OUTER = -1.64, -2.02


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, params: dict) -> float:
        self.calls.append(params)
        return 1.0


def test_objects_params_known_answers(oval):
    length = oval.length
    cfg = EnvConfig(race=RaceConfig(race_type="OBJECT_AVOIDANCE", object_positions="0.1,1;0.15,-1"))
    recorder = Recorder()
    env = DeepRacerEnv(oval, default_action_space(), recorder, cfg)
    env.reset(options={"start_ndist": 0.0})
    env.step(4)
    p = recorder.calls[0]
    s0, s1 = 0.1 * length, 0.15 * length
    assert p["objects_location"] == [
        [pytest.approx(-2.0 + s0, abs=1e-6), pytest.approx(INNER, abs=1e-6)],
        [pytest.approx(-2.0 + s1, abs=1e-6), pytest.approx(OUTER, abs=1e-6)],
    ]
    assert p["objects_left_of_center"] == [True, False]
    assert p["objects_distance"] == [pytest.approx(s0, abs=1e-6), pytest.approx(s1, abs=1e-6)]
    assert p["objects_distance_from_center"] == [pytest.approx(0.19, abs=1e-6)] * 2
    assert p["objects_heading"] == [0.0, 0.0] and p["objects_speed"] == [0.0, 0.0]
    # the car (0.14 m + one step along) is before both boxes: previous wraps to the last, next is box 0
    assert p["closest_objects"] == [1, 0]
    assert p["object_in_camera"] is True  # box 0 is 1.8 m ahead, 0.19 m left: inside the 1.13 rad field of view
    assert p["is_crashed"] is False


def test_box_in_the_lane_ends_the_episode_crashed(oval):
    cfg = EnvConfig(race=RaceConfig(race_type="OBJECT_AVOIDANCE", object_positions="0.1,1"))
    recorder = Recorder()
    env = DeepRacerEnv(oval, default_action_space(), recorder, cfg)
    env.reset(options={"start_ndist": 0.0})
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(5)  # straight at 1 m/s along the centre line
        if terminated or truncated:
            break
    assert info["status"] == "crashed" and terminated
    assert recorder.calls[-1]["is_crashed"] is True and recorder.calls[-2]["is_crashed"] is False
    # the box spans x = s0 - 2 ± 0.25, y = -1.84 ... -1.44; the car's front corners (0.162 m ahead, 0.098 m left of
    # its origin on y = -1.83) enter it when the origin reaches x = s0 - 2 - 0.25 - 0.162
    assert env.pose.x + 0.16176 > -2.0 + 0.1 * oval.length - 0.25
    records, trace = env.drain_records()
    assert records[0]["episode_status"] == "Crashed" and trace[-1][15] == "crashed"


def test_collision_test_is_the_simapps_corner_test(oval):
    objects = RaceObjects(RaceConfig(race_type="OBJECT_AVOIDANCE", object_positions="0.1,-1"), random.Random(0))
    objects.reset(TrackGeometry(oval))
    box = objects.objects[0]
    assert (box.x, box.y) == (pytest.approx(-2.0 + 0.1 * oval.length), pytest.approx(OUTER))
    assert objects.collided(Pose(box.x - 0.25 - 0.15, OUTER, 0.0)) is box  # front corners 1 cm inside
    assert objects.collided(Pose(box.x - 0.25 - 0.17, OUTER, 0.0)) is None
    assert objects.collided(Pose(box.x, OUTER + 0.2 + 0.09, 0.0)) is box  # right corners 0.8 cm into its side
    assert objects.collided(Pose(box.x, INNER, 0.0)) is None


def test_default_placement_alternates_lanes_from_the_start_gap(oval):
    objects = RaceObjects(RaceConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=3), random.Random(0))
    geometry = TrackGeometry(oval)
    objects.reset(geometry)
    dists = [geometry.project(o.x, o.y).ndist * oval.length for o in objects.objects]
    gap = 0.02 * oval.length  # MIN_DISTANCE_BETWEEN_OBSTACLES 2.0 is a percentage of the length in the simapp
    assert dists == pytest.approx([gap, (gap + oval.length - 1.0) / 2, oval.length - 1.0], abs=0.02)
    assert [o.inner_lane for o in objects.objects] == [True, False, True]
    assert all(o.size == (0.5, 0.4) for o in objects.objects)


def test_bot_cars_drive_their_lane_and_report_speed_and_heading(oval):
    cfg = EnvConfig(race=RaceConfig(race_type="HEAD_TO_BOT", number_of_bot_cars=1, bot_car_speed=0.2))
    recorder = Recorder()
    env = DeepRacerEnv(oval, default_action_space(), recorder, cfg)
    env.reset(options={"start_ndist": 0.5})  # race on the top straight, away from the bot car
    bot = env.race_objects.objects[0]
    assert (bot.x, bot.y) == (pytest.approx(0.0), pytest.approx(INNER))  # 2 m along, inner lane
    for _ in range(15):
        env.step(4)
    assert (bot.x, bot.y) == (pytest.approx(0.2, abs=1e-6), pytest.approx(INNER))  # 1 s at 0.2 m/s
    p = recorder.calls[-1]
    assert p["objects_speed"] == [0.2] and p["objects_heading"] == [pytest.approx(0.0, abs=1e-6)]
    assert p["objects_location"] == [[pytest.approx(0.2, abs=1e-6), pytest.approx(INNER)]]


def test_bot_car_hit_from_behind_ends_the_episode_but_not_from_ahead(oval):
    cfg = EnvConfig(race=RaceConfig(race_type="HEAD_TO_BOT", number_of_bot_cars=1, bot_car_speed=0.2))
    env = DeepRacerEnv(oval, default_action_space(), Recorder(), cfg)
    env.reset(options={"start_ndist": 0.1})  # beside the bot car (2 m along), so teleporting stays near the start
    bot = env.race_objects.objects[0]
    env.pose = Pose(bot.x - 0.30, INNER + 0.05, 0.0)  # right behind it: its front right corner is inside the bot car
    _, _, terminated, _, info = env.step(5)
    assert terminated and info["status"] == "crashed"
    env.reset(options={"start_ndist": 0.1})
    bot = env.race_objects.objects[0]
    env.pose = Pose(bot.x + 0.2, INNER + 0.05, 0.0)  # just ahead, overlapping: the bot car ran into the racer
    _, _, terminated, _, info = env.step(4)
    assert not terminated and info["status"] == "in_progress"
    x = bot.x
    env.step(4)
    assert bot.x == pytest.approx(x)  # the bot cars sit out the penalty


def test_time_trial_has_no_objects_and_the_17_number_observation(oval):
    recorder = Recorder()
    env = DeepRacerEnv(oval, default_action_space(), recorder)
    obs, _ = env.reset()
    obs, *_ = env.step(5)
    assert obs.shape == (VECTOR_SIZE,) == (17,) and env.race_objects.objects == []
    p = recorder.calls[0]
    assert p["objects_location"] == [] and p["closest_objects"] == [0, 0] and p["is_crashed"] is False


def test_object_races_add_the_next_two_objects_to_the_vector_observation(oval):
    cfg = EnvConfig(race=RaceConfig(race_type="OBJECT_AVOIDANCE", object_positions="0.1,1"))
    env = DeepRacerEnv(oval, default_action_space(), Recorder(), cfg)
    obs, _ = env.reset(options={"start_ndist": 0.0})
    assert obs.shape == (VECTOR_SIZE + 4,)
    ref = env.pose.reference_point()
    box = env.race_objects.objects[0]
    assert obs[17:19] == pytest.approx([(box.x - ref[0]) / 2.6, (box.y - ref[1]) / 2.6], abs=1e-6)
    assert obs[19:21] == pytest.approx([1.0, 0.0])  # no second object: far ahead


def test_camera_draws_objects(oval):
    objects = RaceObjects(RaceConfig(race_type="OBJECT_AVOIDANCE", object_positions="0.1,1"), random.Random(0))
    objects.reset(TrackGeometry(oval))
    camera = Camera(oval)
    pose = Pose(-1.0, -1.83, 0.0)
    plain, with_box = camera.render(pose), camera.render(pose, objects.objects)
    changed = plain != with_box
    assert changed.sum() > 50 and np.all(with_box[changed] <= OBJECT + 10)  # dark: the box, lit and hazed


def test_race_keys_use_the_simapp_names(oval):
    hp = parse_hyperparameters(
        {"RACE_TYPE": "object_avoidance", "NUMBER_OF_OBSTACLES": "4", "OBJECT_POSITIONS": "0.2,1;0.6,-1"}
    )
    cfg = race_config(hp)
    assert cfg.race_type == "OBJECT_AVOIDANCE" and cfg.obstacle_count == 2 and cfg.has_objects
    assert parse_hyperparameters({"number_of_bot_cars": 2, "race_type": "HEAD_TO_BOT"}).number_of_bot_cars == 2
    with pytest.raises(UserError, match="race_type"):
        parse_hyperparameters({"RACE_TYPE": "DRAG_RACE"})
    with pytest.raises(UserError, match="object_positions"):
        parse_hyperparameters({"OBJECT_POSITIONS": "0.2;x"})
    assert math.isclose(race_config(parse_hyperparameters({})).bot_car_speed, 0.2)
