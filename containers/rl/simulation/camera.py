"""A front camera rendered from the track geometry: DeepRacer's 160 x 120 grayscale frame.

The real camera is 640 x 480 RGB, horizontal field of view 1.13 rad, pitched 15° down, resized to 160 x 120 and
converted to grayscale. Here each pixel's ray is intersected once with the ground plane (a table computed at start),
and the frame is one lookup per pixel into a shaded copy of the road raster: dark ground, grey asphalt, white border
lines, a dashed centre line and a flat sky. Boxes and bot cars of object races are drawn as their footprint on the
ground (flat, not as 3-D shapes). Mount height and position are approximations (see the docs).
"""

from __future__ import annotations

import math

import numpy as np

from containers.rl.simulation.race_objects import RaceObject
from containers.rl.simulation.race_objects import inside as inside_footprint
from containers.rl.simulation.simulator import Pose
from containers.rl.simulation.tracks import Track

WIDTH, HEIGHT = 160, 120
HFOV = 1.13
PITCH = math.radians(15.0)
MOUNT_HEIGHT = 0.10
MOUNT_AHEAD = 0.09
MAX_RANGE = 6.0
SKY, GROUND, ROAD, LINE, DASH, OBJECT = 150, 40, 95, 235, 200, 15
LINE_WIDTH_M = 0.05
DASH_M = 0.15


class Camera:
    def __init__(self, track: Track) -> None:
        self.raster = track.raster
        self.shade = _shade(track)
        f = (WIDTH / 2.0) / math.tan(HFOV / 2.0)
        u, v = np.meshgrid(np.arange(WIDTH) + 0.5 - WIDTH / 2.0, np.arange(HEIGHT) + 0.5 - HEIGHT / 2.0)
        forward, left, up = f * np.ones_like(u), -u, -v
        fx = forward * math.cos(PITCH) + up * math.sin(PITCH)
        fz = -forward * math.sin(PITCH) + up * math.cos(PITCH)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(fz < 0, MOUNT_HEIGHT / -fz, np.inf)
        gx, gy = fx * t, left * t
        self.ground = np.isfinite(t) & (np.hypot(gx, gy) < MAX_RANGE)
        self.gx = gx[self.ground] + MOUNT_AHEAD
        self.gy = gy[self.ground]

    def render(self, pose: Pose, objects: list[RaceObject] | tuple[()] = ()) -> np.ndarray:
        c, s = math.cos(pose.yaw), math.sin(pose.yaw)
        wx = pose.x + c * self.gx - s * self.gy
        wy = pose.y + s * self.gx + c * self.gy
        r = self.raster
        cols = ((wx - r.x0) / r.cell).astype(np.int64)
        rows = ((wy - r.y0) / r.cell).astype(np.int64)
        h, w = self.shade.shape
        inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
        values = np.full(wx.shape, GROUND, dtype=np.uint8)
        values[inside] = self.shade[rows[inside], cols[inside]]
        if objects:
            points = np.column_stack([wx, wy])
            for obj in objects:
                values[inside_footprint(points, obj)] = OBJECT
        frame = np.full((HEIGHT, WIDTH), SKY, dtype=np.uint8)
        frame[self.ground] = values
        return frame


def _erode(mask: np.ndarray, k: int) -> np.ndarray:
    out = mask.copy()
    for axis in (0, 1):
        shifted = out.copy()
        for d in range(1, k + 1):
            shifted &= np.roll(out, d, axis=axis) & np.roll(out, -d, axis=axis)
        out = shifted
    return out


def _shade(track: Track) -> np.ndarray:
    r = track.raster
    shade = np.where(r.road, ROAD, GROUND).astype(np.uint8)
    k = max(1, round(LINE_WIDTH_M / r.cell))
    shade[r.road & ~_erode(r.road, k)] = LINE
    s = np.arange(0.0, track.length, r.cell)
    dashed = s[(s % (2 * DASH_M)) < DASH_M]
    xs = np.interp(dashed, track.cumulative, track.center[:, 0])
    ys = np.interp(dashed, track.cumulative, track.center[:, 1])
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            cols = ((xs - r.x0) / r.cell).astype(np.int64) + dx
            rows = ((ys - r.y0) / r.cell).astype(np.int64) + dy
            ok = (cols >= 0) & (cols < shade.shape[1]) & (rows >= 0) & (rows < shade.shape[0])
            shade[rows[ok], cols[ok]] = DASH
    return shade
