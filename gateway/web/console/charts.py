"""The console's charts, laid out for the templates to draw as SVG (charts.html): columns of counts over time,
stacked by series, and a ranking as horizontal bars. Every chart comes with its rows, which the page also
gives as a table (for screen readers, and for the exact figures)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

WIDTH = 720
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 8, 26  # room for the axes' labels
ROW = 22  # a ranking's bar and gap
LABELS = 150  # a ranking's room for its labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    value: int
    label: str


@dataclass(frozen=True)
class Chart:
    id: str
    width: int
    height: int
    series: tuple[str, ...]
    bars: list[Bar]
    rows: list[tuple[str, tuple[int, ...]]]  # each point's label and its values, by series
    y_ticks: list[tuple[float, int]]  # (y, value)
    x_ticks: list[tuple[float, str]]  # (x, label)
    totals: dict[str, int]
    left: int = LEFT
    right: float = WIDTH - RIGHT
    bottom: float = 0.0


def columns(chart_id: str, points: Sequence[dict], series: Sequence[str], label: Callable[[datetime], str],
            tick_every: int, height: int = 200) -> Chart:
    """A column per point (a dict with 'start' and a count per series), the series stacked in order; an x
    label every tick_every points."""
    series = tuple(series)
    floor = height - BOTTOM
    top = _scale(max((sum(p[s] for s in series) for p in points), default=0))
    step = (WIDTH - LEFT - RIGHT) / max(len(points), 1)
    bars, rows, ticks = [], [], []
    for n, point in enumerate(points):
        text, x, stacked = label(point["start"]), LEFT + n * step, 0
        rows.append((text, tuple(point[s] for s in series)))
        if n % tick_every == 0:
            ticks.append((round(x + step / 2, 1), text))
        for name in series:
            if point[name]:
                y = floor - (stacked + point[name]) * (floor - TOP) / top
                bars.append(Bar(round(x + step * 0.1, 1), round(y, 1), round(step * 0.8, 1),
                                round(point[name] * (floor - TOP) / top, 1), name, point[name], text))
                stacked += point[name]
    y_ticks = [(round(floor - value * (floor - TOP) / top, 1), value) for value in sorted({0, top // 2, top})]
    return Chart(chart_id, WIDTH, height, series, bars, rows, y_ticks, ticks,
                 {name: sum(p[name] for p in points) for name in series}, bottom=floor)


def ranking(chart_id: str, items: Sequence[tuple[str, int]], series: str) -> Chart:
    """A horizontal bar per item (label, count), the largest first as given."""
    top = _scale(max((count for _label, count in items), default=0))
    span = WIDTH - LABELS - RIGHT - 40  # room left for the count after the longest bar
    bars = [Bar(LABELS, TOP + n * ROW, round(max(count * span / top, 1), 1), ROW - 6, series, count, label)
            for n, (label, count) in enumerate(items)]
    height = TOP + len(items) * ROW + TOP
    return Chart(chart_id, WIDTH, height, (series,), bars, [(label, (count,)) for label, count in items], [], [],
                 {series: sum(count for _label, count in items)}, left=LABELS, bottom=height - TOP)


def _scale(largest: int) -> int:
    """The axis's top: the smallest of 1, 2, 5, 10, 20, 50... not below largest."""
    top = 1
    while top < largest:
        for factor in (2, 5 / 2, 2):
            top = int(top * factor)
            if top >= largest:
                break
    return top
