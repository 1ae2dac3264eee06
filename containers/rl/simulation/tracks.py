"""Tracks in DeepRacer's route format: N x 6 float64 ``.npy`` (centre x/y, inner x/y, outer x/y), metres.

``Track.from_array`` sanitises consecutive duplicate centre points (keeping the closing row, as the current simapp
does), measures the centre line, and builds a road raster (1 cm cells by default) used for the wheel-on-road tests and
the camera. Three tracks are *generated* here (never copied): an oval, a re:Invent-2018-like loop and a
bowtie-like loop. ``load_track`` accepts one of those names or a path to any N x 6 ``.npy`` file.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.path import Path as MplPath

from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

DEFAULT_TRACK = "reinvent_like"
RASTER_CELL_M = 0.01
RASTER_MAX_CELLS = 24_000_000
_DUPLICATE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Raster:
    """The road as a boolean grid: ``road[row, col]`` covers ``x0 + col*cell``, ``y0 + row*cell``."""

    road: np.ndarray
    x0: float
    y0: float
    cell: float

    def contains(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        cols = ((xs - self.x0) / self.cell).astype(np.int64)
        rows = ((ys - self.y0) / self.cell).astype(np.int64)
        height, width = self.road.shape
        inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
        out = np.zeros(xs.shape, dtype=bool)
        out[inside] = self.road[rows[inside], cols[inside]]
        return out


@dataclass(frozen=True)
class Track:
    """A sanitised route with the precomputed geometry the simulator needs."""

    name: str
    center: np.ndarray  # (N, 2), driving order; loops repeat the first point at the end
    inner: np.ndarray
    outer: np.ndarray
    is_loop: bool
    cumulative: np.ndarray  # (N,) distance along the centre line at each waypoint
    length: float
    is_ccw: bool
    raster: Raster = field(repr=False)

    @classmethod
    def from_array(cls, name: str, rows: np.ndarray, *, cell: float = RASTER_CELL_M) -> Track:
        try:
            data = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise UserError(f"track {name!r}: expected an N x 6 array of numbers, got {exc}") from exc
        if data.ndim != 2 or data.shape[1] != 6 or data.shape[0] < 3:
            hint = " (a 6 x N array: transpose it)" if data.ndim == 2 and data.shape[0] == 6 else ""
            raise UserError(
                f"track {name!r}: expected an N x 6 array (centre, inner, outer x/y), got {data.shape}{hint}"
            )
        if not np.all(np.isfinite(data)):
            raise UserError(f"track {name!r}: contains NaN or infinite coordinates")
        data = _sanitise(data)
        if len(data) < 3:
            raise UserError(f"track {name!r}: fewer than 3 distinct centre-line points")
        center, inner, outer = data[:, 0:2], data[:, 2:4], data[:, 4:6]
        narrowest = float(np.hypot(*(outer - inner).T).min())
        if narrowest <= _DUPLICATE_TOLERANCE:
            raise UserError(f"track {name!r}: the inner and outer borders meet (zero width at some waypoint)")
        is_loop = bool(np.allclose(center[0], center[-1], atol=_DUPLICATE_TOLERANCE))
        seg = np.hypot(*np.diff(center, axis=0).T)
        cumulative = np.concatenate([[0.0], np.cumsum(seg)])
        area = _signed_area(center) if is_loop else 0.0
        return cls(
            name=name,
            center=center,
            inner=inner,
            outer=outer,
            is_loop=is_loop,
            cumulative=cumulative,
            length=float(cumulative[-1]),
            is_ccw=area >= 0.0,
            raster=_build_raster(inner, outer, is_loop, cell),
        )

    @property
    def waypoints(self) -> list[tuple[float, float]]:
        return [(float(x), float(y)) for x, y in self.center]

    @property
    def widths(self) -> np.ndarray:
        return np.hypot(*(self.outer - self.inner).T)

    def to_array(self) -> np.ndarray:
        return np.hstack([self.center, self.inner, self.outer])

    def point_at(self, ndist: float) -> tuple[np.ndarray, float]:
        """Centre-line point at normalised distance ``ndist`` and the heading (rad) of its segment."""
        s = (ndist % 1.0 if self.is_loop else min(max(ndist, 0.0), 1.0)) * self.length
        i = int(np.clip(np.searchsorted(self.cumulative, s, side="right") - 1, 0, len(self.center) - 2))
        a, b = self.center[i], self.center[i + 1]
        seg = float(self.cumulative[i + 1] - self.cumulative[i]) or 1.0
        t = (s - self.cumulative[i]) / seg
        point = a + (b - a) * t
        return point, math.atan2(b[1] - a[1], b[0] - a[0])


def _sanitise(data: np.ndarray) -> np.ndarray:
    """Drop consecutive duplicate centre points, keeping the closing row of a loop."""
    keep = [0]
    for i in range(1, len(data)):
        if np.hypot(*(data[i, 0:2] - data[keep[-1], 0:2])) > _DUPLICATE_TOLERANCE or i == len(data) - 1:
            keep.append(i)
    if len(keep) >= 2 and np.hypot(*(data[keep[-1], 0:2] - data[keep[-2], 0:2])) <= _DUPLICATE_TOLERANCE:
        del keep[-2]
    return data[keep]


def _signed_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def _build_raster(inner: np.ndarray, outer: np.ndarray, is_loop: bool, cell: float) -> Raster:
    """Road polygon (between outer and inner border) sampled at cell centres."""
    pts = np.vstack([inner, outer])
    lo, hi = pts.min(axis=0) - 0.5, pts.max(axis=0) + 0.5
    span = hi - lo
    while (span[0] / cell) * (span[1] / cell) > RASTER_MAX_CELLS:
        cell *= 2.0
    width, height = math.ceil(span[0] / cell), math.ceil(span[1] / cell)
    xs = lo[0] + (np.arange(width) + 0.5) * cell
    ys = lo[1] + (np.arange(height) + 0.5) * cell
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    if is_loop:
        road = MplPath(outer).contains_points(grid) ^ MplPath(inner).contains_points(grid)
    else:
        road = MplPath(np.vstack([inner, outer[::-1]])).contains_points(grid)
    return Raster(road=road.reshape(height, width), x0=float(lo[0]), y0=float(lo[1]), cell=cell)


# --- generated tracks -------------------------------------------------------------------------------------------


def _catmull_rom_loop(controls: np.ndarray, samples_per_span: int = 200) -> np.ndarray:
    """Closed centripetal-free (uniform) Catmull-Rom curve through the control points."""
    n = len(controls)
    t = np.linspace(0.0, 1.0, samples_per_span, endpoint=False)[:, None]
    out = []
    for i in range(n):
        p0, p1, p2, p3 = (controls[(i + k) % n] for k in (-1, 0, 1, 2))
        out.append(
            0.5
            * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    return np.vstack(out)


def _resample_loop(dense: np.ndarray, spacing: float) -> np.ndarray:
    closed = np.vstack([dense, dense[:1]])
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(closed, axis=0).T))])
    n = max(8, round(cum[-1] / spacing))
    s = np.linspace(0.0, cum[-1], n, endpoint=False)
    return np.column_stack([np.interp(s, cum, closed[:, 0]), np.interp(s, cum, closed[:, 1])])


def _route_from_centre(center: np.ndarray, width: float) -> np.ndarray:
    """N x 6 rows (closing row repeated) with borders offset by width/2; inner = left of a ccw loop."""
    if _signed_area(np.vstack([center, center[:1]])) < 0:
        center = center[::-1]
    tangent = np.roll(center, -1, axis=0) - np.roll(center, 1, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    left = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    inner = center + left * width / 2.0
    outer = center - left * width / 2.0
    rows = np.hstack([center, inner, outer])
    return np.vstack([rows, rows[:1]])


def generate_oval(straight: float = 4.0, radius: float = 1.83, width: float = 0.76) -> np.ndarray:
    """A stadium: two straights joined by semicircles (about 19.5 m with the defaults)."""
    s = np.linspace(0.0, 1.0, 400, endpoint=False)
    pieces = [
        np.column_stack([-straight / 2 + straight * s, np.full_like(s, -radius)]),
        np.column_stack(
            [straight / 2 + radius * np.cos(-np.pi / 2 + np.pi * s), radius * np.sin(-np.pi / 2 + np.pi * s)]
        ),
        np.column_stack([straight / 2 - straight * s, np.full_like(s, radius)]),
        np.column_stack(
            [-straight / 2 + radius * np.cos(np.pi / 2 + np.pi * s), radius * np.sin(np.pi / 2 + np.pi * s)]
        ),
    ]
    return _route_from_centre(_resample_loop(np.vstack(pieces), 0.15), width)


def generate_reinvent_like(width: float = 0.76) -> np.ndarray:
    """A loop in the spirit of re:Invent 2018: a long straight, a wide sweeper, a chicane and a hairpin (~17.7 m)."""
    controls = np.array(
        [
            [0.0, 0.0],
            [2.0, 0.0],
            [4.0, 0.05],
            [5.3, 0.55],
            [5.7, 1.7],
            [5.0, 2.7],
            [3.8, 2.7],
            [3.0, 2.05],
            [2.2, 2.1],
            [1.4, 3.0],
            [0.3, 3.2],
            [-0.55, 2.4],
            [-0.8, 1.2],
        ]
    )
    return _route_from_centre(_resample_loop(_catmull_rom_loop(controls), 0.15), width)


def generate_bowtie_like(width: float = 0.76) -> np.ndarray:
    """Two lobes pinched at the waist (no crossing): r(θ) = R (1 + a cos 2θ) in polar form (~17.7 m)."""
    theta = np.linspace(0.0, 2.0 * np.pi, 2000, endpoint=False)
    r = 1.9 * (1.0 + 0.55 * np.cos(2.0 * theta))
    dense = np.column_stack([1.25 * r * np.cos(theta), r * np.sin(theta)])
    return _route_from_centre(_resample_loop(dense, 0.15), width)


GENERATED: dict[str, Callable[[], np.ndarray]] = {
    "oval": generate_oval,
    "reinvent_like": generate_reinvent_like,
    "bowtie_like": generate_bowtie_like,
}


def load_track(name_or_path: str | Path) -> Track:
    """A generated track by name, or any N x 6 route ``.npy`` file."""
    key = str(name_or_path)
    if key in GENERATED:
        return Track.from_array(key, GENERATED[key]())
    path = Path(key)
    if not path.exists():
        raise UserError(f"track {key!r} is neither a generated track ({', '.join(GENERATED)}) nor an existing file")
    try:
        rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"could not read track file {path}: {exc}") from exc
    return Track.from_array(path.stem, rows)
