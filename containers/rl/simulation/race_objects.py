"""Static boxes and bot cars for the console's object-avoidance and head-to-bot races, as the simapp places them.

``RaceConfig`` holds the simapp's world keys (``RACE_TYPE``, ``NUMBER_OF_OBSTACLES``, ``NUMBER_OF_BOT_CARS``, ...).
``RaceObjects`` places the objects at each episode start, moves the bot cars along their lanes (changing lanes when
``IS_LANE_CHANGE`` is set), answers the simapp's collision test (a corner of the car's footprint inside an object's
footprint) and computes the ``objects_*`` reward-function keys. Details and the simapp behaviours followed:
docs/deepracer.md#race-types.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass

import numpy as np

from containers.rl.simulation.simulator import REFERENCE_AHEAD, Pose, TrackGeometry

RACE_TYPES = ("TIME_TRIAL", "OBJECT_AVOIDANCE", "HEAD_TO_BOT")
# the simapp's footprints (length along the heading, width across): box (0.5, 0.4), bot car and racer (0.324, 0.196)
BOX_SIZE = (0.5, 0.4)
CAR_SIZE = (0.32352, 0.1961)
CAMERA_HALF_FOV = 1.13 / 2.0
CAMERA_RANGE = 6.0


@dataclass(frozen=True)
class RaceConfig:
    """The simapp's world keys for the race type (docs/deepracer.md#race-types); defaults are DRfC's run.env."""

    race_type: str = "TIME_TRIAL"
    number_of_obstacles: int = 6
    min_distance_between_obstacles: float = 2.0  # percent of the track length, as the simapp converts it
    randomize_obstacle_locations: bool = False
    is_obstacle_bot_car: bool = False
    object_positions: str = ""  # "ndist,lane;ndist,lane" with lane 1 inner, -1 outer
    number_of_bot_cars: int = 3
    min_distance_between_bot_cars: float = 2.0  # metres
    randomize_bot_car_locations: bool = False
    bot_car_speed: float = 0.2
    penalty_seconds: float = 2.0
    is_lane_change: bool = False
    lower_lane_change_time: float = 3.0  # seconds in a lane before a change, drawn in [lower, upper]
    upper_lane_change_time: float = 5.0
    lane_change_distance: float = 1.0  # metres along the track a change takes

    @property
    def has_objects(self) -> bool:
        return (self.race_type == "OBJECT_AVOIDANCE" and self.obstacle_count > 0) or (
            self.race_type == "HEAD_TO_BOT" and self.number_of_bot_cars > 0
        )

    @property
    def is_head_to_bot(self) -> bool:
        return self.race_type == "HEAD_TO_BOT"

    @property
    def obstacle_count(self) -> int:
        return len(self.positions()) if self.object_positions.strip() else self.number_of_obstacles

    def positions(self) -> list[tuple[float, int]]:
        out = []
        for item in self.object_positions.replace(" ", "").split(";"):
            if item:
                ndist, lane = item.split(",")
                out.append((float(ndist), int(lane)))
        return out


@dataclass
class RaceObject:
    name: str
    x: float
    y: float
    heading: float  # radians
    size: tuple[float, float]
    speed: float = 0.0
    centre_dist: float = 0.0  # along the centre line (bot cars: where they are at sim time 0 of the episode)
    inner_lane: bool = True  # bot cars: the lane they drive in (the one a lane change leaves)
    lane_change_start: float = math.inf  # bot cars: driving seconds when the next (or current) lane change begins


def smoothstep(u: np.ndarray) -> np.ndarray:
    """The cubic from 0 to 1 on [0, 1] with zero slope at both ends (clamped outside): a lane change's shape."""
    t = np.clip(u, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def footprint(x: float, y: float, heading: float, size: tuple[float, float]) -> np.ndarray:
    """The four floor corners of a box of ``size`` (length along ``heading``, width across) centred at (x, y)."""
    half_l, half_w = 0.5 * size[0], 0.5 * size[1]
    local = np.array([[half_l, half_w], [half_l, -half_w], [-half_l, -half_w], [-half_l, half_w]])
    c, s = math.cos(heading), math.sin(heading)
    return np.column_stack([x + c * local[:, 0] - s * local[:, 1], y + s * local[:, 0] + c * local[:, 1]])


def inside(points: np.ndarray, obj: RaceObject) -> np.ndarray:
    """Which ``points`` lie inside ``obj``'s footprint."""
    c, s = math.cos(obj.heading), math.sin(obj.heading)
    dx, dy = points[:, 0] - obj.x, points[:, 1] - obj.y
    along, across = c * dx + s * dy, -s * dx + c * dy
    return (np.abs(along) < 0.5 * obj.size[0]) & (np.abs(across) < 0.5 * obj.size[1])


class RaceObjects:
    """The objects of one env's current episode on one driving direction's geometry."""

    def __init__(self, config: RaceConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.objects: list[RaceObject] = []
        self.geometry: TrackGeometry | None = None
        self.bot_time = 0.0  # seconds the bot cars have driven this episode
        self.pause_left = 0.0
        self.lane_rng = random.Random(0)  # lane-change times: a stream of its own, drawn from ``rng`` at reset

    # --- placement and motion ----------------------------------------------------------------------------------

    def reset(self, geometry: TrackGeometry) -> None:
        """Place the episode's objects (redrawn each episode when randomised, as the simapp's reset does)."""
        self.geometry, self.bot_time, self.pause_left = geometry, 0.0, 0.0
        cfg, length = self.config, geometry.track.length
        self.objects = []
        if cfg.race_type == "OBJECT_AVOIDANCE":
            size = CAR_SIZE if cfg.is_obstacle_bot_car else BOX_SIZE
            if cfg.object_positions.strip():
                placed = [(ndist * length, lane == 1) for ndist, lane in cfg.positions()]
            else:
                gap = cfg.min_distance_between_obstacles / 100.0 * length
                placed = self._spread(cfg.number_of_obstacles, gap, cfg.randomize_obstacle_locations)
            for i, (dist, inner) in enumerate(placed):
                self.objects.append(self._on_lane(f"obstacle_{i}", dist, inner, size, 0.0))
        elif cfg.race_type == "HEAD_TO_BOT":
            placed = self._spread(
                cfg.number_of_bot_cars, cfg.min_distance_between_bot_cars, cfg.randomize_bot_car_locations
            )
            for i, (dist, inner) in enumerate(placed):
                self.objects.append(self._on_lane(f"bot_car_{i}", dist, inner, CAR_SIZE, cfg.bot_car_speed))
            if self._changes_lanes:
                self.lane_rng = random.Random(self.rng.getrandbits(64))
                for obj in self.objects:
                    obj.lane_change_start = self._time_in_lane()

    @property
    def _changes_lanes(self) -> bool:
        """Bot cars change lanes (a parked bot car, speed 0, never does: the change is measured in distance)."""
        return self.config.is_head_to_bot and self.config.is_lane_change and self.config.bot_car_speed > 0.0

    def _time_in_lane(self) -> float:
        return self.lane_rng.uniform(self.config.lower_lane_change_time, self.config.upper_lane_change_time)

    def _spread(self, n: int, gap: float, randomize: bool) -> list[tuple[float, bool]]:
        """Evenly from ``gap`` to 1 m before the end, inner/outer lanes alternating; randomised: perturbed."""
        assert self.geometry is not None
        end = self.geometry.track.length - 1.0
        dists = np.linspace(gap, end, n).tolist() if n > 0 else []
        if not randomize:
            return [(d, i % 2 == 0) for i, d in enumerate(dists)]
        order = list(range(n))
        self.rng.shuffle(order)
        for i in order:
            lo = gap if i == 0 else dists[i - 1] + gap
            hi = end if i == n - 1 else dists[i + 1] - gap
            if lo < hi:
                dists[i] = self.rng.uniform(lo, hi)
        return [(d, self.rng.random() < 0.5) for d in dists]

    def _lane_points(self, s: np.ndarray, inner: bool) -> tuple[np.ndarray, np.ndarray]:
        """Points of the inner or outer lane (half-way between centre and border) at centre-line distances ``s``."""
        assert self.geometry is not None
        track = self.geometry.track
        border = track.inner if inner else track.outer
        lane = 0.5 * (track.center + border)
        if track.is_loop:
            s = np.mod(s, track.length)
        return np.interp(s, track.cumulative, lane[:, 0]), np.interp(s, track.cumulative, lane[:, 1])

    def _lane_pose(self, dist: float, inner: bool) -> tuple[float, float, float]:
        """Pose on a lane at centre-line distance ``dist``, heading along the lane."""
        xs, ys = self._lane_points(np.array([dist - 0.02, dist, dist + 0.02]), inner)
        return float(xs[1]), float(ys[1]), math.atan2(ys[2] - ys[0], xs[2] - xs[0])

    def _changing_pose(self, dist: float, obj: RaceObject) -> tuple[float, float, float]:
        """Pose at ``dist`` on the curve from ``obj``'s lane to the other that starts at its lane-change start and
        spans ``LANE_CHANGE_DISTANCE`` (a smoothstep across, so the heading leaves and joins the lanes tangentially)."""
        s = np.array([dist - 0.02, dist, dist + 0.02])
        start_dist = obj.centre_dist + obj.speed * obj.lane_change_start
        across = smoothstep((s - start_dist) / self.config.lane_change_distance)
        xa, ya = self._lane_points(s, obj.inner_lane)
        xb, yb = self._lane_points(s, not obj.inner_lane)
        xs, ys = xa + across * (xb - xa), ya + across * (yb - ya)
        return float(xs[1]), float(ys[1]), math.atan2(ys[2] - ys[0], xs[2] - xs[0])

    def _on_lane(self, name: str, dist: float, inner: bool, size: tuple[float, float], speed: float) -> RaceObject:
        x, y, heading = self._lane_pose(dist, inner)
        return RaceObject(name, x, y, heading, size, speed, dist, inner)

    def advance(self, dt: float) -> None:
        """Move the bot cars ``dt`` seconds along their lanes (held while they sit out a crash penalty)."""
        if not self.config.is_head_to_bot or not self.objects:
            return
        moving = max(0.0, dt - self.pause_left)
        self.pause_left = max(0.0, self.pause_left - dt)
        self.bot_time += moving
        for obj in self.objects:
            dist = obj.centre_dist + obj.speed * self.bot_time
            if self._changes_lanes and self._in_lane_change(obj):
                x, y, obj.heading = self._changing_pose(dist, obj)
            else:
                x, y, obj.heading = self._lane_pose(dist, obj.inner_lane)
            obj.x, obj.y = x, y

    def _in_lane_change(self, obj: RaceObject) -> bool:
        """Finish the changes ``obj`` has completed (it then drives the other lane for a new random time, as the
        simapp's ``BotCarsCtrl`` schedules them) and say whether one is under way."""
        duration = self.config.lane_change_distance / obj.speed
        while self.bot_time >= obj.lane_change_start + duration:
            obj.inner_lane = not obj.inner_lane
            obj.lane_change_start += duration + self._time_in_lane()
        return self.bot_time > obj.lane_change_start

    # --- queries -----------------------------------------------------------------------------------------------

    def collided(self, pose: Pose) -> RaceObject | None:
        """The first object a corner of the car's footprint is inside (the simapp's test), or None."""
        corners = footprint(pose.x, pose.y, pose.yaw, CAR_SIZE)
        for obj in self.objects:
            if inside(corners, obj).any():
                return obj
        return None

    def bot_car_ahead_of(self, obj: RaceObject, car_ndist: float) -> bool:
        """The simapp ends a head-to-bot episode only when the racer hits a bot car that is ahead of it."""
        assert self.geometry is not None
        front = (obj.x + REFERENCE_AHEAD * math.cos(obj.heading), obj.y + REFERENCE_AHEAD * math.sin(obj.heading))
        bot_ndist = self.geometry.project(*front).ndist
        return car_ndist * 100.0 < bot_ndist * 100.0

    def penalise_bot_cars(self) -> None:
        """The racer ran into a bot car from ahead: the bot cars stop for the penalty (simapp: BotCarsCtrl)."""
        self.pause_left += self.config.penalty_seconds

    def reward_params(self, reference: tuple[float, float], yaw: float, car_ndist: float) -> dict[str, object]:
        """The simapp's ``get_object_reward_params`` values (time trials keep the defaults)."""
        if not self.objects or self.geometry is None:
            return {}
        geometry = self.geometry
        projections = [geometry.project(o.x, o.y) for o in self.objects]
        length = geometry.track.length
        pdists = [p.ndist * length for p in projections]
        order = sorted(range(len(pdists)), key=lambda i: pdists[i])
        ordered = [pdists[i] for i in order]
        nxt = bisect.bisect_right(ordered, car_ndist * length)
        prev = nxt - 1 if nxt > 0 else len(ordered) - 1
        nxt = nxt if nxt < len(ordered) else 0
        prev_i, next_i = order[prev], order[nxt]
        left = []
        for obj, proj in zip(self.objects, projections, strict=True):
            heading = geometry.heading_at(proj.segment)
            side = math.cos(heading) * (obj.y - proj.point[1]) - math.sin(heading) * (obj.x - proj.point[0])
            left.append(side > 0.0)
        bots = self.config.is_head_to_bot
        return {
            "closest_objects": [prev_i, next_i],
            "objects_location": [[o.x, o.y] for o in self.objects],
            "objects_left_of_center": left,
            "objects_distance": pdists,
            "objects_distance_from_center": [p.distance for p in projections],
            "objects_heading": [o.heading if bots else 0.0 for o in self.objects],
            "objects_speed": [o.speed if bots else 0.0 for o in self.objects],
            "object_in_camera": self.in_camera(self.objects[next_i], reference, yaw),
        }

    @staticmethod
    def in_camera(obj: RaceObject, reference: tuple[float, float], yaw: float) -> bool:
        """A corner or the centre of ``obj`` within the camera's horizontal field of view and range."""
        points = np.vstack([footprint(obj.x, obj.y, obj.heading, obj.size), [[obj.x, obj.y]]])
        dx, dy = points[:, 0] - reference[0], points[:, 1] - reference[1]
        c, s = math.cos(yaw), math.sin(yaw)
        ahead, left = c * dx + s * dy, -s * dx + c * dy
        in_fov = np.abs(np.arctan2(left, ahead)) <= CAMERA_HALF_FOV
        visible = (ahead > 0.0) & in_fov & (np.hypot(dx, dy) < CAMERA_RANGE)
        return bool(visible.any())

    def ahead_in_car_frame(
        self, reference: tuple[float, float], yaw: float, car_ndist: float, count: int
    ) -> np.ndarray:
        """The next ``count`` objects ahead along the track, as (forward, left) metres from the car (far if none)."""
        out = np.tile(np.array([CAMERA_RANGE, 0.0]), (count, 1))
        if not self.objects or self.geometry is None:
            return out
        length = self.geometry.track.length
        gaps = []
        for obj in self.objects:
            gap = (self.geometry.project(obj.x, obj.y).ndist - car_ndist) * length
            if self.geometry.track.is_loop:  # objects up to 0.5 m behind (being passed) still count as ahead
                gap = (gap + 0.5) % length - 0.5
            gaps.append((gap, obj))
        c, s = math.cos(yaw), math.sin(yaw)
        for k, (_, obj) in enumerate(sorted(gaps, key=lambda g: g[0])[:count]):
            dx, dy = obj.x - reference[0], obj.y - reference[1]
            out[k] = (c * dx + s * dy, -s * dx + c * dy)
        return out
