"""The roll-up: the worker turns facts (and the visits seen) into each month's figures, one
row per month, location and metric in `dashboard_figure`, so the dashboard page reads a
year of figures in one query and never scans the facts.

Each figure is a numerator and a denominator from plain SQL aggregates that run on SQLite
and PostgreSQL alike: facts carry their clinic-local month (app/services/facts.py), and
visit times are compared with the UTC instants of the clinic's month boundaries, computed
here. Location 0 is the whole clinic; each location gets its own rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from app.clinic import clinic_profile
from app.clock import utcnow
from app.db import write_transaction
from app.services.facts import clinic_day
from app.tables import DashboardFigure, Fact, Location

# The figures, in the order the dashboard shows them: (metric, how its value reads).
# "share": numerator / denominator as a percentage; "mean": numerator / denominator;
# "count": the numerator; "money": the numerator, an amount; "minutes": a mean in minutes.
METRICS: dict[str, str] = {
    "enrollment": "share",  # enrolled / patients seen in the last 12 months
    "active": "share",  # signed in this month / enrolled
    "multi_feature": "share",  # used 2+ areas this month / active
    "messages": "count",  # conversations patients started
    "response_mean": "minutes",  # first answer, mean minutes
    "response_p90": "minutes",  # first answer, 90th percentile (numerator; denominator: count)
    "booked_online": "share",  # visits booked through the portal / all booked
    "results_same_day": "share",  # released results viewed the same clinic day / released
    "payments_online": "share",  # payments through the portal / all payments
    "payments_amount": "money",  # amount paid through the portal (denominator: all amounts)
    "installed": "share",  # added to the home screen / enrolled
    "push_enabled": "share",  # notifications on / enrolled
    "satisfaction": "mean",  # "How easy was that?" 1-5
    "recommend": "mean",  # "Would you recommend us?" 0-10
}
# The follow-up list's size, kept for the opportunities (the page never counts invites).
FOLLOW_UP_DUE = "follow_up_due"
# Retention of the patients seen in a month: portal users and others, and the share of each
# with a return visit within 3, 6 and 12 months after the month.
RETURN_MONTHS = (3, 6, 12)
GROUPS = ("portal", "other")


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_instant(month: date) -> datetime:
    """The UTC instant the clinic's month begins (its local midnight on the first)."""
    local = datetime.combine(month, time(0), tzinfo=clinic_profile().timezone)
    return local.astimezone(UTC)


def current_month() -> date:
    return month_start(clinic_day(utcnow()))


@dataclass(frozen=True)
class Scope:
    """One location, or the whole clinic (id 0): the SQL condition on a column and its value."""

    id: int

    def on(self, column: str) -> tuple[str, list[Any]]:
        if self.id == 0:
            return "", []
        return f" AND {column} = {{}}", [self.id]


async def _one(sql: str, *values: Any) -> float:
    rows = await Fact.raw(sql, *values)
    if not rows:
        return 0.0
    value = next(iter(rows[0].values()))
    return float(value or 0)


async def _count_facts(month: date, kind: str, scope: Scope, extra: str = "") -> float:
    where, values = scope.on("location")
    return await _one(
        f"SELECT COUNT(*) AS n FROM fact WHERE month = {{}} AND kind = {{}}{where}{extra}",  # noqa: S608  (fixed conditions; values are bound)
        month,
        kind,
        *values,
    )


async def _sum_facts(month: date, kind: str, scope: Scope, extra: str = "") -> float:
    where, values = scope.on("location")
    return await _one(
        f"SELECT SUM(value) AS n FROM fact WHERE month = {{}} AND kind = {{}}{where}{extra}",  # noqa: S608
        month,
        kind,
        *values,
    )


async def _patients_by(month: date, kind: str, scope: Scope) -> float:
    """Patients with a fact of this kind in any month up to and including this one."""
    where, values = scope.on("location")
    return await _one(
        f"SELECT COUNT(DISTINCT patient) AS n FROM fact WHERE kind = {{}} AND month <= {{}}{where}",  # noqa: S608
        kind,
        month,
        *values,
    )


async def _patients_in(month: date, kind: str, scope: Scope) -> float:
    where, values = scope.on("location")
    return await _one(
        f"SELECT COUNT(DISTINCT patient) AS n FROM fact WHERE kind = {{}} AND month = {{}}{where}",  # noqa: S608
        kind,
        month,
        *values,
    )


async def _multi_feature(month: date, scope: Scope) -> float:
    where, values = scope.on("location")
    return await _one(
        f"""
        SELECT COUNT(*) AS n FROM (
            SELECT patient FROM fact
            WHERE month = {{}} AND area <> '' AND patient IS NOT NULL{where}
            GROUP BY patient HAVING COUNT(DISTINCT area) >= 2
        ) used
        """,  # noqa: S608
        month,
        *values,
    )


async def _percentile(month: date, kind: str, scope: Scope, count: int, share: float) -> float:
    """The nearest-rank percentile of the values (ORDER BY ... OFFSET runs on both engines)."""
    if count == 0:
        return 0.0
    where, values = scope.on("location")
    rank = max(math.ceil(share * count), 1)
    return await _one(
        f"""
        SELECT value FROM fact WHERE month = {{}} AND kind = {{}} AND value IS NOT NULL{where}
        ORDER BY value LIMIT 1 OFFSET {{}}
        """,  # noqa: S608
        month,
        kind,
        *values,
        rank - 1,
    )


# Had joined the portal before the end of a month (a fact's month is its clinic month).
_ENROLLED = (
    " AND EXISTS (SELECT 1 FROM fact f WHERE f.patient = a.patient"
    " AND f.kind = 'enrolled' AND f.month < {})"
)
_NOT_ENROLLED = _ENROLLED.replace(" AND EXISTS", " AND NOT EXISTS")


async def _seen(start: date, end: date, scope: Scope, *, enrolled: bool | None = None) -> float:
    """Patients with a visit they came to between two clinic months (end excluded), at the
    location; enrolled True/False: only those who had (not) joined the portal by the end."""
    where, values = scope.on("a.location")
    joined = "" if enrolled is None else (_ENROLLED if enrolled else _NOT_ENROLLED)
    joined_values: list[Any] = [] if enrolled is None else [end]
    return await _one(
        f"""
        SELECT COUNT(DISTINCT a.patient) AS n FROM appointment a
        WHERE a.status = 'fulfilled' AND a.starts_at >= {{}} AND a.starts_at < {{}}{where}{joined}
        """,  # noqa: S608
        month_instant(start),
        month_instant(end),
        *values,
        *joined_values,
    )


async def _returned(month: date, scope: Scope, *, enrolled: bool, within: int) -> float:
    """Of the patients seen in the month (portal users or not), those with another visit
    they came to within `within` months after the month."""
    end = add_months(month, 1)
    where, values = scope.on("a.location")
    joined = _ENROLLED if enrolled else _NOT_ENROLLED
    return await _one(
        f"""
        SELECT COUNT(DISTINCT a.patient) AS n FROM appointment a
        WHERE a.status = 'fulfilled' AND a.starts_at >= {{}} AND a.starts_at < {{}}{where}
          {joined}
          AND EXISTS (SELECT 1 FROM appointment b WHERE b.patient = a.patient
              AND b.status = 'fulfilled' AND b.starts_at >= {{}} AND b.starts_at < {{}})
        """,  # noqa: S608
        month_instant(month),
        month_instant(end),
        *values,
        end,
        month_instant(end),
        month_instant(add_months(end, within)),
    )


async def _recommend_of_seen(month: date, scope: Scope) -> tuple[float, float]:
    """The recommendation answers of the portal users seen in the month: sum and count."""
    end = add_months(month, 1)
    where, values = scope.on("a.location")
    rows = await Fact.raw(
        f"""
        SELECT SUM(r.value) AS total, COUNT(r.id) AS n FROM fact r
        WHERE r.kind = 'survey_recommend' AND r.patient IN (
            SELECT a.patient FROM appointment a
            WHERE a.status = 'fulfilled' AND a.starts_at >= {{}} AND a.starts_at < {{}}{where})
        """,  # noqa: S608
        month_instant(month),
        month_instant(end),
        *values,
    )
    row = rows[0] if rows else {}
    return float(row.get("total") or 0), float(row.get("n") or 0)


async def month_figures(month: date, scope: Scope) -> dict[str, tuple[float, float]]:
    """Every figure of one month and location: metric -> (numerator, denominator)."""
    figures: dict[str, tuple[float, float]] = {}
    end = add_months(month, 1)
    seen_year = await _seen(add_months(month, -11), end, scope)
    enrolled_seen = await _seen(add_months(month, -11), end, scope, enrolled=True)
    figures["enrollment"] = (enrolled_seen, seen_year)
    enrolled = await _patients_by(month, "enrolled", scope)
    active = await _patients_in(month, "signed_in", scope)
    figures["active"] = (active, enrolled)
    figures["multi_feature"] = (await _multi_feature(month, scope), active)
    figures["messages"] = (await _count_facts(month, "message_sent", scope), 0.0)
    answered = await _count_facts(month, "message_answered", scope)
    figures["response_mean"] = (await _sum_facts(month, "message_answered", scope), answered)
    figures["response_p90"] = (
        await _percentile(month, "message_answered", scope, int(answered), 0.9),
        answered,
    )
    online = " AND channel = 'portal'"
    figures["booked_online"] = (
        await _count_facts(month, "visit_booked", scope, online),
        await _count_facts(month, "visit_booked", scope),
    )
    figures["results_same_day"] = (
        await _count_facts(month, "result_viewed", scope, " AND value = 1"),
        await _count_facts(month, "result_released", scope),
    )
    figures["payments_online"] = (
        await _count_facts(month, "payment", scope, online),
        await _count_facts(month, "payment", scope),
    )
    figures["payments_amount"] = (
        await _sum_facts(month, "payment", scope, online),
        await _sum_facts(month, "payment", scope),
    )
    figures["installed"] = (await _patients_by(month, "app_installed", scope), enrolled)
    figures["push_enabled"] = (await _patients_by(month, "push_enabled", scope), enrolled)
    figures["satisfaction"] = (
        await _sum_facts(month, "survey_ease", scope),
        await _count_facts(month, "survey_ease", scope),
    )
    figures["recommend"] = (
        await _sum_facts(month, "survey_recommend", scope),
        await _count_facts(month, "survey_recommend", scope),
    )
    for group in GROUPS:
        enrolled_group = group == "portal"
        seen = await _seen(month, end, scope, enrolled=enrolled_group)
        figures[f"seen_{group}"] = (seen, 0.0)
        for within in RETURN_MONTHS:
            returned = await _returned(month, scope, enrolled=enrolled_group, within=within)
            figures[f"return_{within}_{group}"] = (returned, seen)
    figures["recommend_portal"] = await _recommend_of_seen(month, scope)
    return figures


async def scopes() -> list[Scope]:
    ids = await Location.select(Location.id).order_by(Location.id)
    return [Scope(0), *(Scope(int(row["id"])) for row in ids)]


async def dashboard_rollup(*, months: int = 13, today: date | None = None) -> int:
    """Recompute the figures of the last `months` clinic months (this one included) for the
    clinic and each location: the worker's duty, idempotent. Returns the rows written."""
    last = month_start(today or clinic_day(utcnow()))
    written = 0
    all_scopes = await scopes()
    for back in range(months):
        month = add_months(last, -back)
        rows: list[DashboardFigure] = []
        for scope in all_scopes:
            for metric, (numerator, denominator) in (await month_figures(month, scope)).items():
                rows.append(
                    DashboardFigure(
                        month=month,
                        location=scope.id,
                        metric=metric,
                        numerator=numerator,
                        denominator=denominator,
                    )
                )
        async with write_transaction():
            await DashboardFigure.delete().where(
                DashboardFigure.month == month, DashboardFigure.metric != FOLLOW_UP_DUE
            )
            await DashboardFigure.insert(*rows)
        written += len(rows)
    return written


async def figure_set(*, metric: str, month: date, location: int, numerator: float) -> None:
    """One figure written on its own (inside the caller's transaction)."""
    await DashboardFigure.delete().where(
        DashboardFigure.metric == metric,
        DashboardFigure.month == month,
        DashboardFigure.location == location,
    )
    await DashboardFigure.insert(
        DashboardFigure(month=month, location=location, metric=metric, numerator=numerator)
    )
