"""Charts drawn server-side as plain SVG data (line charts, grouped bars, a top-down track), like the execution graph.

A chart is data for ``templates/charts.html``: every point keeps its values (``data-x``/``data-y`` and a tooltip), so a
chart is readable, testable and needs no script (docs/console.md#how-it-is-built).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 14, 34
MAX_POINTS = 2000  # per series: a longer series is thinned evenly (the last point always kept)
PALETTE = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#1b7c83", "#e16f24", "#6e7781")


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    cx: float
    cy: float
    label: str
    marked: bool = False


@dataclass(frozen=True)
class ChartSeries:
    name: str
    colour: str
    points: list[ChartPoint]

    @property
    def path(self) -> str:
        return " ".join(f"{p.cx:.1f},{p.cy:.1f}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    position: float
    text: str


@dataclass(frozen=True)
class LineChart:
    title: str
    series: list[ChartSeries]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    x_label: str
    width: int = WIDTH
    height: int = HEIGHT
    plot: tuple[int, int, int, int] = (_LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM)

    @property
    def empty(self) -> bool:
        return not any(s.points for s in self.series)


@dataclass(frozen=True)
class Bar:
    label: str
    series: str
    value: float
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: list[Bar]
    groups: list[Tick]
    y_ticks: list[Tick]
    legend: list[tuple[str, str]]
    width: int = WIDTH
    height: int = HEIGHT
    baseline_y: float = HEIGHT - _BOTTOM
    plot: tuple[int, int, int, int] = (_LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM)


@dataclass(frozen=True)
class TrackDrawing:
    """A track's borders and laps as SVG polylines in one viewBox (metres, y up turned to SVG's y down)."""

    view_box: str
    borders: list[str]
    centre: str
    laps: list[tuple[str, str, str]] = field(default_factory=list)  # (name, colour, points)


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    x_label: str = "",
    x_is_time: bool = False,
    marked: Sequence[tuple[float, float]] = (),
) -> LineChart:
    """Series of ``(x, y)`` points on shared axes; ``marked`` points (e.g. the best job) are drawn highlighted."""
    cleaned = [
        (name, _thin([(float(x), float(y)) for x, y in pts if _finite(x) and _finite(y)])) for name, pts in series
    ]
    xs = [x for _, pts in cleaned for x, _ in pts]
    ys = [y for _, pts in cleaned for _, y in pts]
    x_range, y_range = _range(xs), _range(ys, pad=True)
    left, top, right, bottom = _LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM
    marks = {(float(x), float(y)) for x, y in marked}

    def place(x: float, y: float) -> tuple[float, float]:
        return _scale(x, x_range, left, right), _scale(y, y_range, bottom, top)

    drawn = []
    for index, (name, pts) in enumerate(cleaned):
        colour = PALETTE[index % len(PALETTE)]
        points = [ChartPoint(x, y, *place(x, y), _point_label(name, x, y, x_is_time), (x, y) in marks) for x, y in pts]
        drawn.append(ChartSeries(name, colour, points))
    x_ticks = _distinct(
        [Tick(_scale(v, x_range, left, right), _tick_text(v, x_is_time, x_range)) for v in _ticks(x_range)]
    )
    y_ticks = [Tick(_scale(v, y_range, bottom, top), _number(v)) for v in _ticks(y_range)]
    return LineChart(title, drawn, x_ticks, y_ticks, x_label)


def bar_chart(title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]) -> BarChart:
    """Grouped vertical bars: one group per label, one bar per series (e.g. baseline and window shares)."""
    values = [float(v) for _, vals in series for v in vals if _finite(v)]
    low, high = min([0.0, *values]), max([0.0, *values])
    y_range = (low, high if high > low else low + 1.0)
    left, top, right, bottom = _LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM
    group_width = (right - left) / max(1, len(labels))
    bar_width = group_width * 0.8 / max(1, len(series))
    zero = _scale(0.0, y_range, bottom, top)
    bars: list[Bar] = []
    for s_index, (name, vals) in enumerate(series):
        colour = PALETTE[s_index % len(PALETTE)]
        for g_index, value in enumerate(vals[: len(labels)]):
            if not _finite(value):
                continue
            y = _scale(float(value), y_range, bottom, top)
            x = left + g_index * group_width + group_width * 0.1 + s_index * bar_width
            bars.append(Bar(labels[g_index], name, float(value), x, min(y, zero), bar_width, abs(zero - y), colour))
    step = max(1, math.ceil(len(labels) / 12))  # at most ~12 group labels under the axis
    groups = [Tick(left + (i + 0.5) * group_width, _short(label)) for i, label in enumerate(labels) if i % step == 0]
    y_ticks = [Tick(_scale(v, y_range, bottom, top), _number(v)) for v in _ticks(y_range)]
    legend = [(name, PALETTE[i % len(PALETTE)]) for i, (name, _) in enumerate(series)]
    return BarChart(title, bars, groups, y_ticks, legend, baseline_y=zero)


def track_drawing(
    borders: Sequence[Sequence[tuple[float, float]]],
    centre: Sequence[tuple[float, float]],
    laps: Sequence[tuple[str, Sequence[tuple[float, float]]]],
) -> TrackDrawing:
    lines = (*borders, centre, *(pts for _, pts in laps))
    every = [p for line in lines for p in line if _finite(p[0]) and _finite(p[1])]
    if not every:
        return TrackDrawing("0 0 1 1", [], "")
    xs, ys = [p[0] for p in every], [p[1] for p in every]
    margin = 0.3
    view_box = f"{min(xs) - margin:.3f} {-max(ys) - margin:.3f} {max(xs) - min(xs) + 2 * margin:.3f} "
    view_box += f"{max(ys) - min(ys) + 2 * margin:.3f}"

    def polyline(points: Sequence[tuple[float, float]]) -> str:
        return " ".join(f"{x:.3f},{-y:.3f}" for x, y in _thin(list(points)))

    drawn_laps = [(name, PALETTE[i % len(PALETTE)], polyline(pts)) for i, (name, pts) in enumerate(laps)]
    return TrackDrawing(view_box, [polyline(b) for b in borders], polyline(centre), drawn_laps)


def _distinct(ticks: list[Tick]) -> list[Tick]:
    """Ticks whose text differs from the previous one (time labels are rounded to the second)."""
    kept: list[Tick] = []
    for tick in ticks:
        if not kept or kept[-1].text != tick.text:
            kept.append(tick)
    return kept


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / (MAX_POINTS - 1)
    return [points[int(i * step)] for i in range(MAX_POINTS - 1)] + [points[-1]]


def _range(values: Sequence[float], pad: bool = False) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if high == low:
        return low - 0.5 if pad else low - 1.0, high + 0.5 if pad else high + 1.0
    if pad:
        extra = (high - low) * 0.05
        return low - extra, high + extra
    return low, high


def _scale(value: float, span: tuple[float, float], start: float, end: float) -> float:
    low, high = span
    return start + (value - low) / (high - low) * (end - start)


def _ticks(span: tuple[float, float], count: int = 5) -> list[float]:
    low, high = span
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(count + 2) if first + i * step <= high + step * 1e-9]


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4g}"


def _tick_text(value: float, is_time: bool, span: tuple[float, float]) -> str:
    if not is_time:
        return _number(value)
    fmt = "%H:%M:%S" if span[1] - span[0] < 3600 else "%m-%d %H:%M"
    return time.strftime(fmt, time.localtime(value))


def _point_label(series: str, x: float, y: float, is_time: bool) -> str:
    where = _tick_text(x, is_time, (x, x + 1)) if is_time else _number(x)
    return f"{series}: {_number(y)} at {where}"


def _short(label: str, limit: int = 14) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
