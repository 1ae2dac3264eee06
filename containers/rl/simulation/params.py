"""The 27 ``params`` keys of the current simapp, built fresh for every reward call.

A fresh dict with fresh lists each step is equivalent to the simapp's ``copy.deepcopy`` (tuples of floats are
immutable), so a reward function may mutate its argument freely. Time trials have no objects: the object keys take
the simapp's defaults (empty lists, ``closest_objects == [0, 0]``, ``object_in_camera == False``); object races fill
them from ``race_objects.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from containers.rl.simulation.simulator import Pose, Projection, TrackGeometry

PARAM_KEYS = (
    "all_wheels_on_track",
    "x",
    "y",
    "heading",
    "steering_angle",
    "speed",
    "progress",
    "steps",
    "distance_from_center",
    "is_left_of_center",
    "track_width",
    "track_length",
    "waypoints",
    "closest_waypoints",
    "is_reversed",
    "is_offtrack",
    "is_crashed",
    "projection_distance",
    "closest_objects",
    "objects_location",
    "objects_left_of_center",
    "objects_distance",
    "objects_distance_from_center",
    "objects_heading",
    "objects_speed",
    "object_in_camera",
    "sim_time",
)


@dataclass
class EpisodeState:
    """Mutable per-episode counters of one env."""

    start_ndist: float = 0.0
    start_time: float = 0.0
    steps: int = 0
    progress: float = 0.0
    reverse_count: int = 0
    immobile_count: int = 0
    total_reward: float = 0.0
    all_wheels_on_track: bool = True
    is_offtrack: bool = False
    is_crashed: bool = False
    last_reference: tuple[float, float] = (0.0, 0.0)
    last_command: tuple[float, float] = (0.0, 0.0)
    last_projection: Projection = field(default_factory=lambda: Projection(0, 0.0, (0.0, 0.0), 0.0))
    reward_error: dict[str, str] | None = None  # kind, where, message of the error that ended the episode


def build_params(
    geometry: TrackGeometry,
    pose: Pose,
    proj: Projection,
    state: EpisodeState,
    steering_angle: float,
    speed: float,
    is_reversed: bool,
    sim_time: float,
    objects: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The reward function's argument; steering/speed are the commanded (pre-clip) action values. ``objects`` holds
    the ``objects_*`` keys of an object race (``RaceObjects.reward_params``); without it they take the simapp's
    time-trial defaults."""
    x, y = pose.reference_point()
    inner, outer = geometry.border_points(proj)
    to_inner = math.hypot(x - inner[0], y - inner[1])
    to_outer = math.hypot(x - outer[0], y - outer[1])
    heading = math.degrees(pose.yaw)
    if heading <= -180.0:
        heading += 360.0
    params: dict[str, Any] = {
        "all_wheels_on_track": state.all_wheels_on_track,
        "x": x,
        "y": y,
        "heading": heading,
        "steering_angle": float(steering_angle),
        "speed": float(speed),
        "progress": state.progress,
        "steps": float(state.steps),
        "distance_from_center": proj.distance,
        "is_left_of_center": (to_inner < to_outer) != (not geometry.track.is_ccw),
        "track_width": math.dist(inner, outer),
        "track_length": geometry.track.length,
        "waypoints": list(geometry.waypoints),
        "closest_waypoints": geometry.closest_waypoints(proj.ndist),
        "is_reversed": is_reversed,
        "is_offtrack": state.is_offtrack,
        "is_crashed": state.is_crashed,
        "projection_distance": proj.ndist * geometry.track.length,
        "closest_objects": [0, 0],
        "objects_location": [],
        "objects_left_of_center": [],
        "objects_distance": [],
        "objects_distance_from_center": [],
        "objects_heading": [],
        "objects_speed": [],
        "object_in_camera": False,
        "sim_time": sim_time,
    }
    if objects:
        params.update(objects)
    return params
