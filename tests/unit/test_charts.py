"""Where a value sits on the range bar, and how the trend chart places earlier values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.services.results.charts import CHART_HEIGHT, CHART_WIDTH, range_bar, trend_chart


def test_the_usual_range_takes_the_middle_of_the_bar() -> None:
    bar = range_bar(85, 70, 100)
    assert bar is not None
    assert (bar.band_start, bar.band_end) == (25.0, 75.0)
    assert bar.marker == 50.0
    assert not bar.off_scale


def test_values_far_outside_the_range_are_pinned_to_the_edge() -> None:
    high = range_bar(400, 70, 100)
    low = range_bar(-5, 70, 100)
    assert high is not None
    assert low is not None
    assert (high.marker, high.off_scale) == (100.0, True)
    assert (low.marker, low.off_scale) == (0.0, True)


def test_an_upper_limit_only_starts_at_zero_and_a_missing_range_draws_nothing() -> None:
    bar = range_bar(150, None, 200)
    assert bar is not None
    assert bar.band_start == 0.0
    assert range_bar(5, None, None) is None
    assert range_bar(5, 10, 10) is None


def test_the_trend_spaces_values_by_date_inside_the_chart() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    history = [
        (start, 90.0),
        (start + timedelta(days=30), 110.0),
        (start + timedelta(days=90), 95.0),
    ]
    chart = trend_chart(history, 70, 99)
    assert chart is not None
    xs = [point.x for point in chart.points]
    assert xs == sorted(xs)
    assert xs[1] - xs[0] < xs[2] - xs[1]  # 30 days, then 60 days
    assert all(0 <= point.y <= CHART_HEIGHT for point in chart.points)
    assert xs[0] >= 0
    assert xs[-1] <= CHART_WIDTH
    # A higher value sits higher up (a smaller y).
    assert chart.points[1].y < chart.points[0].y
    assert chart.band is not None
    assert chart.band[0] < chart.band[1]
    assert chart.points[-1].is_latest
    assert chart.path.startswith("M")
    assert trend_chart(history[:1], 70, 99) is None
