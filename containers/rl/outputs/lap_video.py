"""An evaluation lap to watch: an animated GIF of the car's front camera beside a top-down view of the track
(docs/deepracer.md#watching-a-lap), written beside the reward graph.

Each frame is one sim-trace row of the lap (every ``stride``-th when the lap is long): the camera frame the agent saw
from that pose (rendered by the simulator's own :class:`Camera`, doubled to 320 x 240), and the road raster seen from
above with the path so far and the car. Frames play at the simulator's 15 steps per second (times the stride), so the
GIF lasts as long as the lap did. Objects of object-avoidance races are not drawn (the trace does not carry them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from containers.rl.simulation.camera import Camera
from containers.rl.simulation.simulator import REFERENCE_AHEAD, Pose
from containers.rl.simulation.tracks import Track

__all__ = ["MAX_FRAMES", "lap_to_watch", "write_lap_video"]

SIM_STEPS_PER_SECOND = 15
MAX_FRAMES = 300
CAMERA_SCALE = 2
PANEL_HEIGHT = 120 * CAMERA_SCALE
TRAIL, CAR, GAP = 180, 255, 0
_CAR_HALF = 3  # pixels either side of the car's position in the top-down panel
# sim-trace columns (containers.rl.simulation.env: X, Y of the reference point, yaw in degrees, progress)
_X, _Y, _YAW, _PROGRESS = 2, 3, 4, 11


def lap_to_watch(records: list[dict[str, Any]]) -> int:
    """The lap worth watching: the fastest completed one, else the one that got furthest (its index)."""
    finished = [i for i, r in enumerate(records) if r["completion_percentage"] >= 100]
    if finished:
        return min(finished, key=lambda i: records[i]["elapsed_time_in_milliseconds"])
    return max(range(len(records)), key=lambda i: records[i]["completion_percentage"])


def write_lap_video(track: Track, trace: list[list[Any]], path: Path) -> Path | None:
    """Write the lap as an animated GIF at ``path``; ``None`` (nothing written) for an empty trace."""
    if not trace:
        return None
    camera = Camera(track)
    panel, to_pixel = _top_down(camera)
    stride = max(1, math.ceil(len(trace) / MAX_FRAMES))
    frames = []
    trail = np.zeros(panel.shape, dtype=bool)
    for row in trace[::stride]:
        yaw = math.radians(float(row[_YAW]))
        x, y = float(row[_X]), float(row[_Y])
        view = camera.render(Pose(x - REFERENCE_AHEAD * math.cos(yaw), y - REFERENCE_AHEAD * math.sin(yaw), yaw))
        view = np.kron(view, np.ones((CAMERA_SCALE, CAMERA_SCALE), dtype=np.uint8))
        r, c = to_pixel(x, y)
        trail[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] = True
        top = np.where(trail, TRAIL, panel).astype(np.uint8)
        top[max(r - _CAR_HALF, 0) : r + _CAR_HALF + 1, max(c - _CAR_HALF, 0) : c + _CAR_HALF + 1] = CAR
        gap = np.full((PANEL_HEIGHT, 4), GAP, dtype=np.uint8)
        frames.append(Image.fromarray(np.hstack([view, gap, top]), mode="L"))
    path.parent.mkdir(parents=True, exist_ok=True)
    duration_ms = 10 * round(100 * stride / SIM_STEPS_PER_SECOND)  # GIF counts in hundredths of a second
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return path


def _top_down(camera: Camera) -> tuple[np.ndarray, Callable[[float, float], tuple[int, int]]]:
    """The road raster scaled to the panel's height, north up, and a function from track metres to its pixels."""
    shade, raster = camera.shade, camera.scene
    factor = max(1, math.ceil(shade.shape[0] / PANEL_HEIGHT))
    small = shade[::factor, ::factor][::-1]
    panel = np.zeros((PANEL_HEIGHT, small.shape[1]), dtype=np.uint8)
    top = (PANEL_HEIGHT - small.shape[0]) // 2
    panel[top : top + small.shape[0]] = small

    def to_pixel(x: float, y: float) -> tuple[int, int]:
        col = int((x - raster.x0) / raster.cell / factor)
        row = top + small.shape[0] - 1 - int((y - raster.y0) / raster.cell / factor)
        return min(max(row, 0), PANEL_HEIGHT - 1), min(max(col, 0), panel.shape[1] - 1)

    return panel, to_pixel
