"""A front camera rendered from the track geometry: DeepRacer's 160 x 120 grayscale frame.

The real camera is 640 x 480 RGB, horizontal field of view 1.13 rad, pitched 15° down, resized to 160 x 120 and
converted to grayscale. Here each pixel's ray is intersected once with the ground plane (tables computed at start),
and a frame is one lookup per ground pixel into the textured ground of the track's scene (``camera_scene.py``: floor,
asphalt, border lines, dashed centre line), at the pyramid level that matches the ground the pixel covers. Above the
ground, each column's ray meets the walls around the track; above the walls is the sky. Light: a haze that grows with
distance and a vignette darkening the corners (one fixed gain and offset per pixel). Boxes and bot cars of object
races are drawn as their footprint on the ground (flat, not as 3-D shapes). Mount height and position are
approximations (docs/deepracer.md#the-camera).
"""

from __future__ import annotations

import math

import numpy as np

from containers.rl.simulation.camera_scene import (
    MIP_LEVELS,
    OBJECT,
    SKY,
    WALL,
    WALL_HEIGHT_M,
    Scene,
    scene_for,
)
from containers.rl.simulation.race_objects import RaceObject
from containers.rl.simulation.race_objects import inside as inside_footprint
from containers.rl.simulation.simulator import Pose
from containers.rl.simulation.tracks import Track

__all__ = ["HEIGHT", "OBJECT", "STEREO_OFFSET_M", "WIDTH", "Camera"]

WIDTH, HEIGHT = 160, 120
HFOV = 1.13
PITCH = math.radians(15.0)
MOUNT_HEIGHT = 0.10
MOUNT_AHEAD = 0.09
FOCAL = (WIDTH / 2.0) / math.tan(HFOV / 2.0)
HAZE = 150.0  # what distant ground fades toward
HAZE_DISTANCE_M = 6.0  # ground this far away is 1 − 1/e of the way to HAZE · HAZE_STRENGTH
HAZE_STRENGTH = 0.35
VIGNETTE = 0.15  # brightness lost in the frame's corners
NEAREST_WALL_M = 0.3  # rows whose rays cannot meet a wall nearer than this are never wall or sky
LIGHT_SHIFT = 7  # gains and offsets are fixed-point with 7 fractional bits
STEREO_OFFSET_M = 0.03  # the stereo pair's cameras sit 0.03 m left and right of the centre (a 6 cm baseline)


class Camera:
    """``mount_left``: the camera's offset to the left of the car's centre line (the stereo pair's ±0.03 m)."""

    def __init__(self, track: Track, mount_left: float = 0.0) -> None:
        self.mount_left = mount_left
        self.scene: Scene = scene_for(track)
        scene = self.scene
        u, v = np.meshgrid(np.arange(WIDTH) + 0.5 - WIDTH / 2.0, np.arange(HEIGHT) + 0.5 - HEIGHT / 2.0)
        forward, left, up = FOCAL * np.ones_like(u), -u, -v
        fx = forward * math.cos(PITCH) + up * math.sin(PITCH)
        fz = -forward * math.sin(PITCH) + up * math.cos(PITCH)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(fz < 0, MOUNT_HEIGHT / -fz, np.inf)
        distance = np.hypot(fx * t, left * t)
        x_min, x_max, y_min, y_max = scene.walls
        ground = np.isfinite(t) & (distance < 2.0 * math.hypot(x_max - x_min, y_max - y_min))
        # t is the ground's width under one pixel: pick the pyramid level whose cells are at most that wide
        level = np.clip(np.floor(np.log2(np.maximum(np.where(ground, t, 1.0) / scene.cell, 1.0))), 0, MIP_LEVELS - 1)
        self._levels = []
        for k in range(MIP_LEVELS):
            chosen = ground & (level == k)
            flat = np.flatnonzero(chosen)
            gx = (fx * t)[chosen] + MOUNT_AHEAD
            gy = (left * t)[chosen] + mount_left
            self._levels.append((flat, gx.astype(np.float32), gy.astype(np.float32)))
        tan_elevation = fz / np.hypot(fx, left)
        self._wall_rows = int(np.count_nonzero(tan_elevation.max(axis=1) > -MOUNT_HEIGHT / NEAREST_WALL_M))
        self._tan_elevation = tan_elevation[: self._wall_rows].astype(np.float32)
        self._azimuth = np.arctan2(left[0], fx[0])  # per column; the horizon's azimuth stands for the column's
        self._gain, self._offset = _lighting(np.where(ground, distance, np.inf), u, v)

    @property
    def shade(self) -> np.ndarray:
        """The ground seen from above at full resolution (the lap video's map)."""
        return self.scene.shade

    def render(self, pose: Pose, objects: list[RaceObject] | tuple[()] = ()) -> np.ndarray:
        frame = np.empty(HEIGHT * WIDTH, dtype=np.uint8)
        c, s = math.cos(pose.yaw), math.sin(pose.yaw)
        for k, (flat, gx, gy) in enumerate(self._levels):
            if not flat.size:
                continue
            wx = pose.x + c * gx - s * gy
            wy = pose.y + s * gx + c * gy
            frame[flat] = self._ground(k, wx, wy)
            for obj in objects:
                frame[flat[inside_footprint(np.column_stack([wx, wy]), obj)]] = OBJECT
        image = frame.reshape(HEIGHT, WIDTH)
        self._walls_and_sky(image[: self._wall_rows], pose)
        lit = (image.astype(np.uint16) * self._gain + self._offset) >> LIGHT_SHIFT
        return np.minimum(lit, 255).astype(np.uint8)

    def _ground(self, k: int, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
        scene = self.scene
        texture = scene.levels[k]
        size = scene.cell * 2**k
        h, w = texture.shape
        cols = np.clip((wx - scene.x0) / size, 0, w - 1).astype(np.int64)
        rows = np.clip((wy - scene.y0) / size, 0, h - 1).astype(np.int64)
        return texture.ravel()[rows * w + cols]

    def _walls_and_sky(self, top: np.ndarray, pose: Pose) -> None:
        """Each column's ray meets the wall rectangle at horizontal distance D: the wall covers the elevations
        between its foot (−h/D) and its top ((H − h)/D); above it is sky, below it the ground already drawn."""
        x_min, x_max, y_min, y_max = self.scene.walls
        c, s = math.cos(pose.yaw), math.sin(pose.yaw)
        cx = pose.x + MOUNT_AHEAD * c - self.mount_left * s
        cy = pose.y + MOUNT_AHEAD * s + self.mount_left * c
        angle = pose.yaw + self._azimuth
        dx, dy = np.cos(angle), np.sin(angle)
        with np.errstate(divide="ignore"):
            to_x = np.where(dx > 0, (x_max - cx) / dx, (x_min - cx) / dx)
            to_y = np.where(dy > 0, (y_max - cy) / dy, (y_min - cy) / dy)
        distance = np.maximum(np.minimum(np.abs(to_x), np.abs(to_y)), 0.05).astype(np.float32)
        foot = -MOUNT_HEIGHT / distance
        crest = (WALL_HEIGHT_M - MOUNT_HEIGHT) / distance
        elevation = self._tan_elevation
        top[elevation >= foot] = WALL
        top[elevation > crest] = SKY


def _lighting(distance: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel fixed-point gain and offset: haze toward ``HAZE`` with the ground's distance (none where the ray
    misses the ground), times the vignette."""
    with np.errstate(over="ignore"):
        haze = np.where(np.isfinite(distance), HAZE_STRENGTH * (1.0 - np.exp(-distance / HAZE_DISTANCE_M)), 0.0)
    radius2 = (u**2 + v**2) / ((WIDTH / 2.0) ** 2 + (HEIGHT / 2.0) ** 2)
    vignette = 1.0 - VIGNETTE * radius2
    scale = float(1 << LIGHT_SHIFT)
    gain = np.rint(scale * (1.0 - haze) * vignette).astype(np.uint16)
    offset = np.rint(scale * HAZE * haze * vignette).astype(np.uint16)
    return gain, offset
