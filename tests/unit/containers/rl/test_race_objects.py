"""Object avoidance and head-to-bot: placements, ``objects_*`` params and crashes on constructed scenes (oval)."""

from __future__ import annotations

import itertools
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


LANE_CHANGE = RaceConfig(
    race_type="HEAD_TO_BOT",
    number_of_bot_cars=1,
    min_distance_between_bot_cars=1.0,  # starts 1 m along (x = -1), so its first change ends on the bottom straight
    bot_car_speed=0.2,
    is_lane_change=True,
    lower_lane_change_time=3.0,
    upper_lane_change_time=5.0,
    lane_change_distance=1.0,
)


def _bot_track(env: DeepRacerEnv, steps: int) -> list[tuple[float, float, float, float]]:
    """(sim time, x, y, heading) of bot car 0 after each step."""
    bot = env.race_objects.objects[0]
    out = []
    for _ in range(steps):
        env.step(4)
        out.append((env.sim_time, bot.x, bot.y, bot.heading))
    return out


def test_bot_car_changes_lane_after_a_time_in_the_bounds_within_the_distance(oval):
    env = DeepRacerEnv(oval, default_action_space(), Recorder(), EnvConfig(race=LANE_CHANGE))
    env.reset(options={"start_ndist": 0.5})  # race on the top straight; the bot car starts at x = -1, inner lane
    track = _bot_track(env, 165)  # 11 s: the change starts after 3-5 s and takes 1 m / 0.2 m/s = 5 s
    leaving = [row for row in track if abs(row[2] - INNER) > 1e-9]
    arrived = [row for row in track if abs(row[2] - OUTER) < 1e-9]
    assert leaving and arrived
    start_t, start_x = leaving[0][0], leaving[0][1]
    end_t, end_x = arrived[0][0], arrived[0][1]
    dt = track[1][0] - track[0][0]
    assert 3.0 <= start_t - dt and start_t <= 5.0 + dt  # left the lane after a time in [lower, upper]
    assert end_x - start_x == pytest.approx(1.0, abs=0.2 * dt + 1e-9)  # the other lane after LANE_CHANGE_DISTANCE
    assert end_t - start_t == pytest.approx(5.0, abs=dt + 1e-9)
    assert all(OUTER - 1e-9 <= y <= INNER + 1e-9 for _, _, y, _ in track)  # a smooth curve between the lanes
    # half-way along the change the bot car is half-way across and heads most steeply towards the outer lane
    change_start_x = end_x - 1.0
    _, _, y_mid, heading_mid = min(track, key=lambda row: abs(row[1] - (change_start_x + 0.5)))
    assert y_mid == pytest.approx(0.5 * (INNER + OUTER), abs=0.01)
    assert heading_mid == pytest.approx(-math.atan(1.5 * (INNER - OUTER) / 1.0), abs=0.02)
    assert track[-1][3] == pytest.approx(0.0, abs=1e-6)  # back along the lane afterwards


def test_lane_change_moves_every_object_key_and_the_crash_test(oval):
    recorder = Recorder()
    env = DeepRacerEnv(oval, default_action_space(), recorder, EnvConfig(race=LANE_CHANGE))
    env.reset(options={"start_ndist": 0.5})
    bot = env.race_objects.objects[0]
    _bot_track(env, 165)
    p = recorder.calls[-1]
    assert p["objects_location"] == [[pytest.approx(bot.x), pytest.approx(OUTER, abs=1e-9)]]
    assert p["objects_left_of_center"] == [False] and p["objects_heading"] == [pytest.approx(0.0, abs=1e-6)]
    assert p["objects_distance_from_center"] == [pytest.approx(0.19, abs=1e-6)]
    objects = env.race_objects
    assert objects.collided(Pose(bot.x, OUTER, 0.0)) is bot
    assert objects.collided(Pose(bot.x, INNER, 0.0)) is None  # where it would be without the change
    camera = Camera(oval)
    pose = Pose(bot.x - 1.0, -1.83, 0.0)
    moved = camera.render(pose, objects.objects)
    bot.y = INNER
    assert np.any(moved != camera.render(pose, objects.objects))  # the drawn footprint is where the bot car is


def test_lane_changes_repeat_and_are_deterministic_for_a_seed(oval):
    def left_of_centre_over(seconds: float) -> list[bool]:
        objects = RaceObjects(LANE_CHANGE, random.Random(7))
        geometry = TrackGeometry(oval)
        objects.reset(geometry)
        out = []
        for _ in range(int(seconds * 15)):
            objects.advance(1.0 / 15.0)
            bot = objects.objects[0]
            proj = geometry.project(bot.x, bot.y)
            heading = geometry.heading_at(proj.segment)
            out.append(math.cos(heading) * (bot.y - proj.point[1]) - math.sin(heading) * (bot.x - proj.point[0]) > 0)
        return out

    sides = left_of_centre_over(40.0)  # at most 5 s in a lane + 5 s changing: at least 3 crossings in 40 s
    crossings = sum(a != b for a, b in itertools.pairwise(sides))
    assert crossings >= 3 and sides[0] is True
    assert left_of_centre_over(40.0) == sides


def test_without_lane_change_the_bot_car_keeps_its_lane(oval):
    cfg = RaceConfig(race_type="HEAD_TO_BOT", number_of_bot_cars=1, min_distance_between_bot_cars=1.0)
    objects = RaceObjects(cfg, random.Random(0))
    objects.reset(TrackGeometry(oval))
    for _ in range(165):
        objects.advance(1.0 / 15.0)
    assert objects.objects[0].inner_lane and objects.objects[0].lane_change_start == math.inf
    assert objects.objects[0].y == pytest.approx(INNER)  # 1 m + 2.2 m along: still the bottom straight


def test_lane_change_keys_use_the_simapp_names():
    hp = parse_hyperparameters(
        {
            "RACE_TYPE": "HEAD_TO_BOT",
            "IS_LANE_CHANGE": "true",
            "LOWER_LANE_CHANGE_TIME": "2",
            "upper_lane_change_time": "4.5",
            "LANE_CHANGE_DISTANCE": "0.8",
        }
    )
    cfg = race_config(hp)
    assert cfg.is_lane_change and (cfg.lower_lane_change_time, cfg.upper_lane_change_time) == (2.0, 4.5)
    assert cfg.lane_change_distance == 0.8
    defaults = race_config(parse_hyperparameters({}))
    assert not defaults.is_lane_change
    assert (defaults.lower_lane_change_time, defaults.upper_lane_change_time, defaults.lane_change_distance) == (
        3.0,
        5.0,
        1.0,
    )
    with pytest.raises(UserError, match="lane change times"):
        parse_hyperparameters({"LOWER_LANE_CHANGE_TIME": "6"})
    with pytest.raises(UserError, match="lane_change_distance"):
        parse_hyperparameters({"LANE_CHANGE_DISTANCE": "0"})
