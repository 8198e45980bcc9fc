"""The dashboard as staff read it: each figure for a month with its change from the month
before, a year's trend (a server-drawn chart and its table), retention side by side, the
opportunities the figures point to with the action to take, and the survey's comments.

Everything is read from the rolled-up figures (one query for the year) and worked out here:
the templates only show it. The same figures export as CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from app.access import StaffActor
from app.clock import utcnow
from app.db import write_transaction
from app.i18n import N_
from app.services.audit import audit_staff
from app.services.console.roles import staff_may
from app.services.dashboard.rollup import (
    FOLLOW_UP_DUE,
    METRICS,
    RETURN_MONTHS,
    add_months,
    current_month,
    month_instant,
)
from app.services.results.charts import TrendChart, trend_chart
from app.settings import get_settings
from app.tables import DashboardFigure, Location, SurveyAnswer

TREND_MONTHS = 12

LABELS: dict[str, str] = {
    "enrollment": N_("Enrollment: patients seen in the last 12 months who use the portal"),
    "active": N_("Active: enrolled patients who signed in this month"),
    "multi_feature": N_("Used two or more areas (of active patients)"),
    "messages": N_("Messages patients started"),
    "response_mean": N_("First answer to a message: average"),
    "response_p90": N_("First answer to a message: 9 in 10 within"),
    "booked_online": N_("Visits booked through the portal"),
    "results_same_day": N_("Results viewed the day they were released"),
    "payments_online": N_("Payments made through the portal"),
    "payments_amount": N_("Amount paid through the portal"),
    "installed": N_("Added the portal to their home screen (of enrolled)"),
    "push_enabled": N_("Turned notifications on (of enrolled)"),
    "satisfaction": N_('"How easy was that?" (1 to 5)'),
    "recommend": N_('"Would you recommend us?" (0 to 10)'),
}
# Figures with nothing to show until their area records facts: said plainly.
EMPTY_NOTES: dict[str, str] = {
    "payments_online": N_("No payments yet."),
    "payments_amount": N_("No payments yet."),
    "satisfaction": N_("No answers yet."),
    "recommend": N_("No answers yet."),
    "response_mean": N_("No answers yet."),
    "response_p90": N_("No answers yet."),
}
UNITS = {
    "share": "percent",
    "mean": "score",
    "count": "count",
    "minutes": "minutes",
    "money": "money",
}


@dataclass(frozen=True)
class MonthValue:
    month: date
    value: float | None
    numerator: float
    denominator: float


@dataclass(frozen=True)
class MetricLine:
    metric: str
    label: str
    unit: str  # percent | score | count | minutes
    value: float | None
    previous: float | None
    change: float | None
    numerator: float
    denominator: float
    empty_note: str
    chart: TrendChart | None
    history: tuple[MonthValue, ...]  # oldest first
    has_history: bool  # any month of the year has a figure (else only the note is shown)


@dataclass(frozen=True)
class Opportunity:
    text: str  # an N_ string with %(count)s / %(share)s
    count: int
    share: float
    action: str  # an N_ label
    route: str | None  # the route to do it, when this staff member may
    gap: float  # how far from the goal: the list is sorted by it


@dataclass(frozen=True)
class RetentionLine:
    month: date
    group: str  # portal | other
    seen: int
    returned: tuple[float | None, ...]  # per RETURN_MONTHS; None while the window is open
    recommend: float | None
    recommend_answers: int


@dataclass(frozen=True)
class Comment:
    score: int | None
    comment: str
    task: str
    created_at: datetime


@dataclass(frozen=True)
class Dashboard:
    month: date
    months: tuple[date, ...]  # what the month picker offers, newest first
    location: str  # "" for the whole clinic
    locations: tuple[tuple[str, str], ...]
    metrics: tuple[MetricLine, ...]
    opportunities: tuple[Opportunity, ...]
    retention: tuple[RetentionLine, ...]
    follow_up_due: int
    follow_up_days: int
    comments: tuple[Comment, ...]
    computed_at: datetime | None


def parse_month(text: str) -> date | None:
    """ "2026-11" to the first of that month; None for anything else."""
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1)
    except ValueError:
        return None


def _figure_value(metric: str, numerator: float, denominator: float) -> float | None:
    """A figure's value: a share in percent, a mean, a count, an amount or minutes."""
    kind = METRICS[metric]
    if kind == "count":
        return numerator
    if metric == "response_p90":  # a value, with its count as the denominator
        return numerator if denominator else None
    if not denominator:
        return None
    if kind == "share":
        return 100.0 * numerator / denominator
    if kind == "money":
        return numerator
    return numerator / denominator


async def _location_id(code: str) -> int | None:
    if not code:
        return 0
    row = await Location.select(Location.id).where(Location.code == code).first()
    return int(row["id"]) if row else None


async def dashboard_read(*, staff: StaffActor, month: date | None, location: str) -> Dashboard:
    """The month's dashboard (this month by default) for a location ("" for the clinic)."""
    this_month = current_month()
    month = min(month or this_month, this_month)
    location_id = await _location_id(location)
    if location_id is None:
        location, location_id = "", 0
    first = add_months(month, -(TREND_MONTHS + 12))
    rows = await DashboardFigure.select(
        DashboardFigure.month,
        DashboardFigure.metric,
        DashboardFigure.numerator,
        DashboardFigure.denominator,
        DashboardFigure.computed_at,
    ).where(
        DashboardFigure.location == location_id,
        DashboardFigure.month >= first,
        DashboardFigure.month <= this_month,
    )
    figures: dict[tuple[date, str], tuple[float, float]] = {}
    computed_at: datetime | None = None
    for row in rows:
        figures[(row["month"], row["metric"])] = (row["numerator"], row["denominator"])
        if row["metric"] != FOLLOW_UP_DUE and (
            computed_at is None or row["computed_at"] > computed_at
        ):
            computed_at = row["computed_at"]
    metrics = tuple(_metric_line(metric, month, figures) for metric in METRICS)
    follow_up_due = int(figures.get((this_month, FOLLOW_UP_DUE), (0.0, 0.0))[0])
    comments = await _comments()
    return Dashboard(
        month=month,
        months=tuple(add_months(this_month, -back) for back in range(13)),
        location=location,
        locations=await _locations(),
        metrics=metrics,
        opportunities=_opportunities(staff, metrics, follow_up_due),
        retention=_retention(month, figures),
        follow_up_due=follow_up_due,
        follow_up_days=get_settings().follow_up_days,
        comments=comments,
        computed_at=computed_at,
    )


async def _locations() -> tuple[tuple[str, str], ...]:
    rows = await Location.select(Location.code, Location.name).order_by(Location.code)
    return tuple((row["code"], row["name"]) for row in rows)


def _metric_line(
    metric: str, month: date, figures: dict[tuple[date, str], tuple[float, float]]
) -> MetricLine:
    history = []
    for back in range(TREND_MONTHS - 1, -1, -1):
        when = add_months(month, -back)
        numerator, denominator = figures.get((when, metric), (0.0, 0.0))
        history.append(
            MonthValue(when, _figure_value(metric, numerator, denominator), numerator, denominator)
        )
    current, previous = history[-1], history[-2]
    points = [
        (datetime.combine(line.month, time(12), tzinfo=UTC), line.value)
        for line in history
        if line.value is not None
    ]
    change = None
    if current.value is not None and previous.value is not None:
        change = current.value - previous.value
    return MetricLine(
        metric=metric,
        label=LABELS[metric],
        unit=UNITS[METRICS[metric]],
        value=current.value,
        previous=previous.value,
        change=change,
        numerator=current.numerator,
        denominator=current.denominator,
        empty_note=EMPTY_NOTES.get(metric, N_("Nothing this month.")),
        chart=trend_chart(
            [(when, value) for when, value in points if value is not None], None, None
        ),
        history=tuple(history),
        has_history=bool(points),
    )


# The goals the opportunities measure against, and the action each points to.
GOALS: tuple[tuple[str, float, str, str, str | None, str], ...] = (
    # metric, goal, text, action, route, permission
    (
        "enrollment",
        60.0,
        N_("%(share)s of the patients seen in the last 12 months use the portal."),
        N_("Invite patients at check-in: print the posters"),
        "staff_posters",
        "posters",
    ),
    (
        "installed",
        50.0,
        N_("Increase app installation, currently %(share)s of users."),
        N_("Show patients how to add it to the home screen: print the posters"),
        "staff_posters",
        "posters",
    ),
    (
        "booked_online",
        40.0,
        N_("%(share)s of visits were booked through the portal."),
        N_("Open more visit types to online booking"),
        "staff_inventory",
        "scheduling.inventory",
    ),
    (
        "push_enabled",
        50.0,
        N_("%(share)s of enrolled patients get notifications."),
        N_("Suggest turning notifications on when patients sign in at the desk"),
        None,
        "",
    ),
    (
        "active",
        50.0,
        N_("%(share)s of enrolled patients signed in this month."),
        N_("Answer messages quickly and release results promptly: see the message queue"),
        "staff_messages",
        "messages",
    ),
)


def _opportunities(
    staff: StaffActor, metrics: tuple[MetricLine, ...], follow_up_due: int
) -> tuple[Opportunity, ...]:
    found: list[Opportunity] = []
    if follow_up_due:
        found.append(
            Opportunity(
                text=N_("%(count)s invited patients have not signed in within %(days)s days."),
                count=follow_up_due,
                share=0.0,
                action=N_("Send a reminder"),
                route="staff_dashboard_follow_up",
                gap=1000.0 + follow_up_due,  # the habit that matters most comes first
            )
        )
    by_metric = {line.metric: line for line in metrics}
    for metric, goal, text, action, route, permission in GOALS:
        line = by_metric[metric]
        if line.value is None or line.value >= goal:
            continue
        may = route is not None and staff_may(staff.role, permission)
        found.append(
            Opportunity(
                text=text,
                count=int(line.numerator),
                share=line.value,
                action=action,
                route=route if may else None,
                gap=goal - line.value,
            )
        )
    return tuple(sorted(found, key=lambda item: item.gap, reverse=True))


def _retention(
    month: date, figures: dict[tuple[date, str], tuple[float, float]]
) -> tuple[RetentionLine, ...]:
    """The twelve months before this one, each split in two; a window not yet over is None."""
    now = utcnow()
    lines = []
    for back in range(12, 0, -1):
        cohort = add_months(month, -back)
        end = add_months(cohort, 1)
        for group in ("portal", "other"):
            seen = int(figures.get((cohort, f"seen_{group}"), (0.0, 0.0))[0])
            returned = []
            for within in RETURN_MONTHS:
                numerator, denominator = figures.get(
                    (cohort, f"return_{within}_{group}"), (0.0, 0.0)
                )
                closed = month_instant(add_months(end, within)) <= now
                returned.append(100.0 * numerator / denominator if closed and denominator else None)
            total, answers = figures.get((cohort, "recommend_portal"), (0.0, 0.0))
            portal = group == "portal"
            lines.append(
                RetentionLine(
                    month=cohort,
                    group=group,
                    seen=seen,
                    returned=tuple(returned),
                    recommend=total / answers if portal and answers else None,
                    recommend_answers=int(answers) if portal else 0,
                )
            )
    return tuple(lines)


async def _comments(limit: int = 20) -> tuple[Comment, ...]:
    rows = (
        await SurveyAnswer.select(
            SurveyAnswer.score, SurveyAnswer.comment, SurveyAnswer.task, SurveyAnswer.created_at
        )
        .where(SurveyAnswer.comment != "")
        .order_by(SurveyAnswer.created_at, ascending=False)
        .limit(limit)
    )
    return tuple(
        Comment(row["score"], row["comment"], row["task"], row["created_at"]) for row in rows
    )


def dashboard_csv(board: Dashboard, translate: Callable[[str], str]) -> str:
    """The month's figures as CSV: one line per figure, with last month's beside it."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "month",
            "location",
            "metric",
            "label",
            "unit",
            "numerator",
            "denominator",
            "value",
            "previous",
            "change",
        ]
    )
    for line in board.metrics:
        writer.writerow(
            [
                board.month.strftime("%Y-%m"),
                board.location or "all",
                line.metric,
                translate(line.label),
                line.unit,
                _number(line.numerator),
                _number(line.denominator),
                _number(line.value),
                _number(line.previous),
                _number(line.change),
            ]
        )
    return out.getvalue()


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))


async def dashboard_export(*, staff: StaffActor, month: date | None, location: str) -> Dashboard:
    """The dashboard for the CSV export, audited (it leaves the portal)."""
    board = await dashboard_read(staff=staff, month=month, location=location)
    async with write_transaction():
        await audit_staff(
            staff=staff,
            action="dashboard.export",
            resource_type="Dashboard",
            resource_id=f"{board.month:%Y-%m}:{board.location or 'all'}",
        )
    return board
