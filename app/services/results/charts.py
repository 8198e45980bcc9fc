"""Geometry for the result pictures drawn on the server as SVG: where a value sits against
its usual range, and how it moved over time. No chart library reaches the browser."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RangeBar:
    """A bar 0 to 100 wide: the usual range is [band_start, band_end], the value at `marker`."""

    band_start: float
    band_end: float
    marker: float
    # The value is beyond what the bar shows (it is pinned to the bar's edge).
    off_scale: bool


def range_bar(value: float, low: float | None, high: float | None) -> RangeBar | None:
    """The usual range takes the middle of the bar, with room either side for values
    outside it. A range with only an upper limit ("under 200") starts at zero."""
    if high is None:
        return None
    low_edge = 0.0 if low is None else low
    if high <= low_edge:
        return None
    span = high - low_edge
    start = 0.0 if low is None else low_edge - span * 0.5
    end = high + span * 0.5
    width = end - start

    def position(number: float) -> float:
        return round((number - start) / width * 100, 2)

    off_scale = value < start or value > end
    marker = min(max(position(value), 0.0), 100.0)
    return RangeBar(position(low_edge), position(high), marker, off_scale)


@dataclass(frozen=True)
class TrendPoint:
    x: float
    y: float
    value: float
    when: datetime
    is_latest: bool


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    points: tuple[TrendPoint, ...]
    # The usual range as a horizontal band (top y, bottom y), if there is one.
    band: tuple[float, float] | None
    # Two labelled lines on the value axis: (y, value).
    ticks: tuple[tuple[float, float], ...]

    @property
    def path(self) -> str:
        return " ".join(
            f"{'M' if index == 0 else 'L'}{point.x:g} {point.y:g}"
            for index, point in enumerate(self.points)
        )


CHART_WIDTH, CHART_HEIGHT = 320, 160
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 12, 24


def trend_chart(
    history: list[tuple[datetime, float]], low: float | None, high: float | None
) -> TrendChart | None:
    """Earlier values and this one, oldest first, spaced by date. None below two values."""
    if len(history) < 2:
        return None
    values = [value for _, value in history]
    bounds = values + [bound for bound in (low, high) if bound is not None]
    bottom, top = min(bounds), max(bounds)
    if top == bottom:
        top, bottom = top + 1, bottom - 1
    pad = (top - bottom) * 0.1
    top, bottom = top + pad, max(bottom - pad, 0.0) if bottom >= 0 else bottom - pad
    first, last = history[0][0], history[-1][0]
    span = (last - first).total_seconds() or 1.0
    plot_width = CHART_WIDTH - _LEFT - _RIGHT
    plot_height = CHART_HEIGHT - _TOP - _BOTTOM

    def y_of(value: float) -> float:
        return round(_TOP + (top - value) / (top - bottom) * plot_height, 1)

    points = tuple(
        TrendPoint(
            x=round(_LEFT + (when - first).total_seconds() / span * plot_width, 1),
            y=y_of(value),
            value=value,
            when=when,
            is_latest=index == len(history) - 1,
        )
        for index, (when, value) in enumerate(history)
    )
    band = None
    if high is not None:
        band = (y_of(high), y_of(low if low is not None else bottom))
    tick_values = [high, low] if high is not None and low is not None else [top, bottom]
    ticks = tuple((y_of(value), value) for value in tick_values if value is not None)
    return TrendChart(CHART_WIDTH, CHART_HEIGHT, points, band, ticks)
