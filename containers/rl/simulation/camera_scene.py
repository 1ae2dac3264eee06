"""The world the front camera sees, built once per track: a textured floor with the road painted on it, and walls.

The colours are the ones AWS specifies for DeepRacer tracks (track black PMS 432C, border white, centre line orange
PMS 137C, off-track green PMS 3395), converted to grayscale with the luma weights 0.299 R + 0.587 G + 0.114 B, as the
car's 8-bit grayscale frame shows them (docs/deepracer.md#the-camera). The asphalt and the off-track floor carry a
fine grain and a slow variation of brightness (texture noise, seeded: every render of a pose is the same), the border
lines are 5 cm wide inside the road's edge, and the centre line is a 5 cm dashed line (15 cm dash, 15 cm gap).

The ground is kept as a pyramid of block averages (``levels``: cells of 1, 2, 4, 8 × the road raster's cell), so a
distant pixel reads the average of the ground it covers, as a mip-mapped texture does in the simulator, instead of
one arbitrary 1 cm cell. Walls stand on a rectangle ``WALL_MARGIN_M`` beyond the raster (which itself reaches 0.5 m
beyond the track), ``WALL_HEIGHT_M`` high.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from containers.rl.simulation.tracks import Track


def luma(red: int, green: int, blue: int) -> int:
    return round(0.299 * red + 0.587 * green + 0.114 * blue)


ASPHALT = luma(0x33, 0x3F, 0x48)  # PMS 432C: 60
BORDER = luma(0xEF, 0xEF, 0xEA)  # white (CMYK 0-0-2-9): 238
CENTRE_LINE = luma(0xFF, 0xA3, 0x00)  # PMS 137C orange: 172
FLOOR = luma(0x00, 0xB1, 0x76)  # PMS 3395 green: 117
WALL = 200
SKY = 228
OBJECT = 15
BORDER_WIDTH_M = 0.05
CENTRE_LINE_WIDTH_M = 0.05
DASH_M = 0.15
WALL_MARGIN_M = 0.5
WALL_HEIGHT_M = 0.3
MIP_LEVELS = 4
TEXTURE_SEED = 2018
GRAIN_M = 0.01  # the grain of the asphalt (the floor: twice as coarse)
BLOTCH_M = 0.4  # the scale of the slow brightness variation
CACHED_SCENES = 4


@dataclass(frozen=True)
class Scene:
    """``levels[k][row, col]`` is the ground brightness over ``x0 + col·cell·2^k``, ``y0 + row·cell·2^k``."""

    levels: tuple[np.ndarray, ...]
    x0: float
    y0: float
    cell: float
    walls: tuple[float, float, float, float]  # x min, x max, y min, y max

    @property
    def shade(self) -> np.ndarray:
        return self.levels[0]


_cache: dict[int, tuple[Track, Scene]] = {}
_cache_lock = threading.Lock()


def scene_for(track: Track) -> Scene:
    """The track's scene; the last few are kept, so the evaluation envs of one process build it once."""
    with _cache_lock:
        hit = _cache.get(id(track))
        if hit is not None and hit[0] is track:
            return hit[1]
    scene = build_scene(track)
    with _cache_lock:
        while len(_cache) >= CACHED_SCENES:
            _cache.pop(next(iter(_cache)))
        _cache[id(track)] = (track, scene)
    return scene


def build_scene(track: Track) -> Scene:
    raster = track.raster
    cell = raster.cell
    pad = math.ceil(WALL_MARGIN_M / cell)
    height, width = raster.road.shape
    block = 2 ** (MIP_LEVELS - 1)
    full_h = -(-(height + 2 * pad) // block) * block
    full_w = -(-(width + 2 * pad) // block) * block
    road = np.zeros((full_h, full_w), dtype=bool)
    road[pad : pad + height, pad : pad + width] = raster.road
    x0, y0 = raster.x0 - pad * cell, raster.y0 - pad * cell
    rng = np.random.default_rng(TEXTURE_SEED)
    base = np.where(road, ASPHALT, FLOOR).astype(np.float32)
    grain = _grain(road.shape, rng, max(1, round(GRAIN_M / cell)))
    coarse_grain = _grain(road.shape, rng, max(1, round(2 * GRAIN_M / cell)))
    blotch = _blotches(road.shape, rng, max(2, round(BLOTCH_M / cell)))
    shade = base + np.where(road, 4.0 * grain + 5.0 * blotch, 7.0 * coarse_grain + 6.0 * blotch)
    lines = road & ~_erode(road, max(1, round(BORDER_WIDTH_M / cell)))
    shade[lines] = BORDER + 3.0 * grain[lines]
    dashes = _centre_dashes(track, road.shape, x0, y0, cell)
    shade[dashes] = CENTRE_LINE + 3.0 * grain[dashes]
    level0 = np.clip(np.rint(shade), 0, 255).astype(np.uint8)
    walls = (x0, x0 + full_w * cell, y0, y0 + full_h * cell)
    return Scene(_pyramid(level0), x0, y0, cell, walls)


def _grain(shape: tuple[int, int], rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit noise constant over ``size`` × ``size`` cells, clipped to ±2.5 σ."""
    coarse = np.clip(rng.standard_normal((-(-shape[0] // size), -(-shape[1] // size))), -2.5, 2.5)
    return np.repeat(np.repeat(coarse, size, axis=0), size, axis=1)[: shape[0], : shape[1]].astype(np.float32)


def _blotches(shape: tuple[int, int], rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit noise on a ``size``-cell lattice, interpolated bilinearly (a smooth, slow variation)."""
    rows, cols = shape[0] // size + 2, shape[1] // size + 2
    coarse = np.clip(rng.standard_normal((rows, cols)), -2.0, 2.0).astype(np.float32)
    return _interpolation(shape[0], rows, size) @ coarse @ _interpolation(shape[1], cols, size).T


def _interpolation(n: int, knots: int, size: int) -> np.ndarray:
    """The ``n`` × ``knots`` matrix of linear interpolation between knots ``size`` cells apart."""
    position = np.arange(n) / size
    left = np.minimum(position.astype(np.int64), knots - 2)
    weight = (position - left).astype(np.float32)
    matrix = np.zeros((n, knots), dtype=np.float32)
    matrix[np.arange(n), left] = 1.0 - weight
    matrix[np.arange(n), left + 1] = weight
    return matrix


def _erode(mask: np.ndarray, k: int) -> np.ndarray:
    out = mask.copy()
    for axis in (0, 1):
        shifted = out.copy()
        for d in range(1, k + 1):
            shifted &= np.roll(out, d, axis=axis) & np.roll(out, -d, axis=axis)
        out = shifted
    return out


def _centre_dashes(track: Track, shape: tuple[int, int], x0: float, y0: float, cell: float) -> np.ndarray:
    """Cells within half the line width of the centre line where the distance along it is in a dash."""
    s = np.arange(0.0, track.length, cell / 2.0)
    s = s[(s % (2 * DASH_M)) < DASH_M]
    xs = np.interp(s, track.cumulative, track.center[:, 0])
    ys = np.interp(s, track.cumulative, track.center[:, 1])
    radius = max(1, round(CENTRE_LINE_WIDTH_M / 2.0 / cell))
    mask = np.zeros(shape, dtype=bool)
    base_cols = np.floor((xs - x0) / cell).astype(np.int64)
    base_rows = np.floor((ys - y0) / cell).astype(np.int64)
    for dx in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius:
                continue
            cols, rows = base_cols + dx, base_rows + dy
            ok = (cols >= 0) & (cols < shape[1]) & (rows >= 0) & (rows < shape[0])
            mask[rows[ok], cols[ok]] = True
    return mask


def _pyramid(level0: np.ndarray) -> tuple[np.ndarray, ...]:
    levels = [level0]
    current = level0.astype(np.float32)
    for _ in range(1, MIP_LEVELS):
        h, w = current.shape
        current = current.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        levels.append(np.rint(current).astype(np.uint8))
    return tuple(levels)
