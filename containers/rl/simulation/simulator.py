"""The car and the track queries behind ``params``: a kinematic bicycle with DeepRacer's geometry at 15 Hz.

Everything here is plain arithmetic on one car; ``env.py`` wraps it as a Gymnasium environment. Geometry follows the
simapp: the reference point is 0.14 m ahead of the model origin (mid-wheelbase), progress is measured from the
episode's start with the simapp's wrap corrections, ``closest_waypoints`` bisects the normalised projection into the
waypoints' normalised positions, and the wheels are tested against the road polygon.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from containers.rl.simulation.tracks import Track

DT = 1.0 / 15.0
SUBSTEPS = 4  # the simapp's wheel/hinge controllers run at 60 Hz
WHEELBASE = 0.164
REAR_AXLE_X = -0.0817
FRONT_AXLE_X = 0.0823
HALF_TRACK = 0.081
REFERENCE_AHEAD = 0.14
_WINDOW = 12  # segments searched either side of the last projection


@dataclass
class Pose:
    """Model-origin pose in the track frame; yaw in radians, counter-clockwise from +x."""

    x: float
    y: float
    yaw: float

    def reference_point(self) -> tuple[float, float]:
        return self.x + REFERENCE_AHEAD * math.cos(self.yaw), self.y + REFERENCE_AHEAD * math.sin(self.yaw)


@dataclass(frozen=True)
class Projection:
    segment: int
    ndist: float  # normalised distance along the centre line from the route's first point, [0, 1)
    point: tuple[float, float]
    distance: float  # from the reference point to the centre line


def advance(pose: Pose, steering_deg: float, speed: float, dt: float = DT, substeps: int = SUBSTEPS) -> Pose:
    """Kinematic bicycle about the rear axle with the commanded steering/speed held for ``dt``."""
    h = dt / substeps
    yaw_rate = speed * math.tan(math.radians(steering_deg)) / WHEELBASE
    rx = pose.x + REAR_AXLE_X * math.cos(pose.yaw)
    ry = pose.y + REAR_AXLE_X * math.sin(pose.yaw)
    yaw = pose.yaw
    for _ in range(substeps):
        mid = yaw + 0.5 * yaw_rate * h
        rx += speed * math.cos(mid) * h
        ry += speed * math.sin(mid) * h
        yaw += yaw_rate * h
    yaw = math.atan2(math.sin(yaw), math.cos(yaw))
    return Pose(rx - REAR_AXLE_X * math.cos(yaw), ry - REAR_AXLE_X * math.sin(yaw), yaw)


def wheel_centres(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """x and y of the four wheel centres (left rear, left front, right rear, right front)."""
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    local_x = np.array([REAR_AXLE_X, FRONT_AXLE_X, REAR_AXLE_X, FRONT_AXLE_X])
    local_y = np.array([HALF_TRACK, HALF_TRACK, -HALF_TRACK, -HALF_TRACK])
    return pose.x + c * local_x - s * local_y, pose.y + s * local_x + c * local_y


class TrackGeometry:
    """Precomputed segment arrays of one track (one driving direction) and the queries on them."""

    def __init__(self, track: Track) -> None:
        self.track = track
        self.start = track.center[:-1]
        self.vec = np.diff(track.center, axis=0)
        self.len2 = np.maximum(np.einsum("ij,ij->i", self.vec, self.vec), 1e-18)
        self.n_segments = len(self.vec)
        self.waypoint_ndist = (track.cumulative / track.length).tolist()
        self.waypoints = track.waypoints

    def project(self, x: float, y: float, hint: int | None = None) -> Projection:
        """Nearest point on the centre line, searched around ``hint`` (all segments when None)."""
        if hint is None or self.n_segments <= 2 * _WINDOW + 1:
            idx = np.arange(self.n_segments)
        elif self.track.is_loop:
            idx = np.arange(hint - _WINDOW, hint + _WINDOW + 1) % self.n_segments
        else:
            idx = np.arange(max(0, hint - _WINDOW), min(self.n_segments, hint + _WINDOW + 1))
        a = self.start[idx]
        d = self.vec[idx]
        t = np.clip(((x - a[:, 0]) * d[:, 0] + (y - a[:, 1]) * d[:, 1]) / self.len2[idx], 0.0, 1.0)
        px = a[:, 0] + t * d[:, 0]
        py = a[:, 1] + t * d[:, 1]
        dist2 = (px - x) ** 2 + (py - y) ** 2
        k = int(np.argmin(dist2))
        seg = int(idx[k])
        s = float(self.track.cumulative[seg]) + float(t[k]) * math.sqrt(float(self.len2[seg]))
        ndist = s / self.track.length
        if self.track.is_loop:
            ndist %= 1.0
        return Projection(seg, ndist, (float(px[k]), float(py[k])), math.sqrt(float(dist2[k])))

    def closest_waypoints(self, ndist: float) -> list[int]:
        n = len(self.waypoint_ndist)
        nxt = bisect.bisect_right(self.waypoint_ndist, ndist)
        nxt = min(max(nxt, 1), n - 1)
        return [nxt - 1, nxt]

    def border_points(self, proj: Projection) -> tuple[np.ndarray, np.ndarray]:
        """Inner and outer border points nearest to the projection (searched on the segment's rows)."""
        rows = (proj.segment, proj.segment + 1)
        px, py = proj.point
        inner = min((self.track.inner[r] for r in rows), key=lambda p: (p[0] - px) ** 2 + (p[1] - py) ** 2)
        outer = min((self.track.outer[r] for r in rows), key=lambda p: (p[0] - px) ** 2 + (p[1] - py) ** 2)
        return inner, outer

    def heading_at(self, segment: int) -> float:
        dx, dy = self.vec[segment]
        return math.atan2(dy, dx)

    def ahead(self, ndist: float, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre-line points ``distances`` metres ahead of ``ndist`` (wrapping on loops)."""
        s = ndist * self.track.length + distances
        if self.track.is_loop:
            s = np.mod(s, self.track.length)
        return (
            np.interp(s, self.track.cumulative, self.track.center[:, 0]),
            np.interp(s, self.track.cumulative, self.track.center[:, 1]),
        )


def compute_progress(ndist: float, start_ndist: float, previous: float) -> float:
    """The simapp's ``compute_current_prog``: percent from the episode start with wrap corrections, capped at 100."""
    current = 100.0 * (ndist - start_ndist)
    if current <= 0.0:
        current += 100.0
    if previous > current + 50.0:
        current += 100.0
    if current > previous + 50.0:
        current -= 100.0
    return min(current, 100.0)
