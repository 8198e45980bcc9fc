"""Every figure the worker rolls up from the demo clinic matches the same figure computed here
in plain Python over the raw rows (facts and visits), month by month and location by
location, with months cut at the clinic's midnight; and a fact late on the last evening of a
month counts in that month, not the next (whatever UTC says)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from app.db import write_transaction
from app.services.dashboard.rollup import (
    RETURN_MONTHS,
    Scope,
    add_months,
    dashboard_rollup,
    month_figures,
)
from app.services.demo.clinic import demo_clinic_seed
from app.services.facts import record_fact
from app.tables import Appointment, DashboardFigure, Fact, Location
from tests.factories import make_patient

TODAY = date(2026, 12, 4)
ZONE = ZoneInfo("America/New_York")


def _utc(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _month_of(moment: datetime) -> date:
    return moment.astimezone(ZONE).date().replace(day=1)


def _start(month: date) -> datetime:
    return datetime.combine(month, time(0), tzinfo=ZONE).astimezone(UTC)


class Raw:
    """The raw rows, and each figure computed from them the long way."""

    def __init__(self, facts: list[dict[str, Any]], visits: list[dict[str, Any]]) -> None:
        self.facts = [dict(f, at=_utc(f["occurred_at"])) for f in facts]
        for fact in self.facts:
            fact["m"] = _month_of(fact["at"])
        self.visits = [
            dict(v, at=_utc(v["starts_at"])) for v in visits if v["status"] == "fulfilled"
        ]

    def _facts(self, location: int, **match: Any) -> list[dict[str, Any]]:
        return [
            f
            for f in self.facts
            if (location == 0 or f["location"] == location)
            and all(f[key] == value for key, value in match.items())
        ]

    def enrolled_before(self, patient: int, end: date) -> bool:
        return any(
            f["patient"] == patient and f["kind"] == "enrolled" and f["m"] < end for f in self.facts
        )

    def seen(self, start: date, end: date, location: int) -> set[int]:
        return {
            v["patient"]
            for v in self.visits
            if _start(start) <= v["at"] < _start(end) and location in (0, v["location"])
        }

    def figures(self, month: date, location: int) -> dict[str, tuple[float, float]]:
        out: dict[str, tuple[float, float]] = {}
        end = add_months(month, 1)

        def in_month(kind: str, **match: Any) -> list[dict[str, Any]]:
            return [f for f in self._facts(location, kind=kind, **match) if f["m"] == month]

        def patients_by(kind: str) -> set[int]:
            return {f["patient"] for f in self._facts(location, kind=kind) if f["m"] <= month}

        year = self.seen(add_months(month, -11), end, location)
        out["enrollment"] = (
            len({p for p in year if self.enrolled_before(p, end)}),
            len(year),
        )
        enrolled = patients_by("enrolled")
        active = {f["patient"] for f in in_month("signed_in")}
        out["active"] = (len(active), len(enrolled))
        areas: dict[int, set[str]] = defaultdict(set)
        for fact in self._facts(location):
            if fact["m"] == month and fact["area"] and fact["patient"] is not None:
                areas[fact["patient"]].add(fact["area"])
        out["multi_feature"] = (sum(len(a) >= 2 for a in areas.values()), len(active))
        out["messages"] = (len(in_month("message_sent")), 0)
        answers = sorted(f["value"] for f in in_month("message_answered"))
        out["response_mean"] = (sum(answers), len(answers))
        p90 = answers[max(math.ceil(0.9 * len(answers)), 1) - 1] if answers else 0.0
        out["response_p90"] = (p90, len(answers))
        out["booked_online"] = (
            len(in_month("visit_booked", channel="portal")),
            len(in_month("visit_booked")),
        )
        out["results_same_day"] = (
            len(in_month("result_viewed", value=1.0)),
            len(in_month("result_released")),
        )
        out["payments_online"] = (
            len(in_month("payment", channel="portal")),
            len(in_month("payment")),
        )
        out["payments_amount"] = (
            sum(f["value"] for f in in_month("payment", channel="portal")),
            sum(f["value"] for f in in_month("payment")),
        )
        out["installed"] = (len(patients_by("app_installed")), len(enrolled))
        out["push_enabled"] = (len(patients_by("push_enabled")), len(enrolled))
        ease = [f["value"] for f in in_month("survey_ease")]
        out["satisfaction"] = (sum(ease), len(ease))
        recommend = [f["value"] for f in in_month("survey_recommend")]
        out["recommend"] = (sum(recommend), len(recommend))
        seen = self.seen(month, end, location)
        for group, portal in (("portal", True), ("other", False)):
            members = {p for p in seen if self.enrolled_before(p, end) == portal}
            out[f"seen_{group}"] = (len(members), 0)
            for within in RETURN_MONTHS:
                later = self.seen(end, add_months(end, within), 0)
                out[f"return_{within}_{group}"] = (len(members & later), len(members))
        answered = [
            f["value"]
            for f in self.facts
            if f["kind"] == "survey_recommend" and f["patient"] in seen
        ]
        out["recommend_portal"] = (sum(answered), len(answered))
        return out


async def _raw() -> Raw:
    facts = await Fact.select(
        Fact.kind,
        Fact.area,
        Fact.patient,
        Fact.location,
        Fact.occurred_at,
        Fact.channel,
        Fact.value,
    )
    visits = await Appointment.select(
        Appointment.patient, Appointment.location, Appointment.starts_at, Appointment.status
    )
    return Raw(facts, visits)


async def test_each_figure_of_the_demo_year_matches_python_over_the_raw_rows() -> None:
    assert await demo_clinic_seed(today=TODAY, reset=True)
    await dashboard_rollup(months=13, today=TODAY)
    raw = await _raw()
    stored: dict[tuple[date, int, str], tuple[float, float]] = {
        (row["month"], row["location"], row["metric"]): (row["numerator"], row["denominator"])
        for row in await DashboardFigure.select()
    }
    locations = [0, *(row["id"] for row in await Location.select(Location.id))]
    checked = 0
    for back in range(13):
        month = add_months(TODAY.replace(day=1), -back)
        for location in locations:
            for metric, (numerator, denominator) in raw.figures(month, location).items():
                got = stored[(month, location, metric)]
                assert got == (
                    _approx(numerator),
                    _approx(denominator),
                ), (month, location, metric)
                checked += 1
    assert checked > 13 * 3 * 20
    # The demo year is lived in: the figures are not all zero.
    this_month = raw.figures(add_months(TODAY.replace(day=1), -1), 0)
    for metric, part in (
        ("enrollment", 0),
        ("active", 0),
        ("booked_online", 1),
        ("results_same_day", 1),
    ):
        assert this_month[metric][part] > 0, metric


def _approx(value: float) -> Any:
    import pytest

    return pytest.approx(value, abs=1e-6)


async def test_a_month_ends_at_the_clinics_midnight_not_utcs() -> None:
    patient = await make_patient()
    # 23:30 in New York on 31 October is 03:30 UTC on 1 November.
    late = datetime(2026, 11, 1, 3, 30, tzinfo=UTC)
    october, november = date(2026, 10, 1), date(2026, 11, 1)
    before = {m: await month_figures(m, Scope(0)) for m in (october, november)}
    async with write_transaction():
        await record_fact("message_sent", patient.id, occurred_at=late, channel="portal")
    after = {m: await month_figures(m, Scope(0)) for m in (october, november)}
    assert after[october]["messages"][0] == before[october]["messages"][0] + 1
    assert after[november]["messages"][0] == before[november]["messages"][0]
    row = await Fact.select(Fact.day, Fact.month).where(Fact.patient == patient.id).first()
    assert row == {"day": date(2026, 10, 31), "month": october}
