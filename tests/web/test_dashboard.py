"""The dashboard in the console: administrators and practice managers read the month, its
trend and the opportunities; the follow-up list reminds invited patients who have not
joined, once, never after they said no; the month downloads as CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from httpx import AsyncClient

from app.clock import utcnow
from app.services.dashboard.follow_up import follow_ups_send_due
from app.services.enrollment import invite_create
from app.settings import get_settings
from app.tables import AuditEvent, EnrollmentInvite, OutboxMessage, Patient
from tests.factories import make_location, make_patient, phone_number, with_contacts
from tests.web.conftest import csrf_from, flashed, staff_signed_in


async def _invited_a_week_ago() -> tuple[Patient, str]:
    """A patient with a phone, invited by text eight days ago, who never signed in."""
    patient = await with_contacts(await make_patient(birth=date(1975, 1, 2)), phone=phone_number())
    await invite_create(
        mrn=patient.mrn, via="sms", base_url="https://portal.test", clinic_name="Clinic"
    )
    await EnrollmentInvite.update(
        {EnrollmentInvite.created_at: utcnow() - timedelta(days=8)}
    ).where(EnrollmentInvite.patient == patient.id)
    assert patient.phone
    return patient, patient.phone


async def _reminders_to(phone: str) -> int:
    return await OutboxMessage.count().where(
        OutboxMessage.recipient == phone, OutboxMessage.kind == "enrollment_reminder"
    )


async def test_admins_and_managers_read_the_dashboard_and_other_roles_may_not(
    client: AsyncClient,
) -> None:
    await staff_signed_in(client, role="front_desk")
    assert (await client.get("/staff/dashboard")).status_code == 403
    for role in ("admin", "manager"):
        await staff_signed_in(client, role=role)
        page = await client.get("/staff/dashboard")
        assert page.status_code == 200
        assert "Top opportunities" in page.text
        assert "association, not a cause" in page.text
        assert "No payments yet." in page.text


async def test_an_invited_patient_not_joined_after_a_week_gets_one_reminder_from_the_list(
    client: AsyncClient,
) -> None:
    patient, phone = await _invited_a_week_ago()
    await staff_signed_in(client, role="admin")
    page = await client.get("/staff/dashboard")
    refreshed = await client.post(
        "/staff/dashboard/refresh", data={"_csrf_token": csrf_from(page.text)}
    )
    assert flashed(refreshed) == "dashboard_refreshed"
    page = await client.get("/staff/dashboard")
    assert "have not signed in within 7 days" in page.text
    listing = await client.get("/staff/dashboard/follow-up")
    assert patient.family_name in listing.text

    sent = await client.post(
        "/staff/dashboard/follow-up", data={"_csrf_token": csrf_from(listing.text)}
    )
    assert flashed(sent) == "follow_up_sent"
    assert await _reminders_to(phone) == 1
    body = (
        await OutboxMessage.select(OutboxMessage.body)
        .where(OutboxMessage.recipient == phone, OutboxMessage.kind == "enrollment_reminder")
        .first()
    )
    assert body is not None
    assert "/enroll/" in body["body"]

    # The cap is one reminder: a week after it, a second click sends nothing more.
    await EnrollmentInvite.update(
        {EnrollmentInvite.created_at: utcnow() - timedelta(days=9)}
    ).where(EnrollmentInvite.patient == patient.id)
    listing = await client.get("/staff/dashboard/follow-up")
    assert listing.status_code == 200
    assert patient.family_name not in listing.text
    await client.post(
        "/staff/dashboard/follow-up",
        data={"_csrf_token": csrf_from(page.text), "patient": patient.public_id},
    )
    assert await _reminders_to(phone) == 1


async def test_a_patient_who_asked_not_to_be_reminded_never_is(client: AsyncClient) -> None:
    patient, phone = await _invited_a_week_ago()
    await staff_signed_in(client, role="manager")
    listing = await client.get("/staff/dashboard/follow-up")
    assert patient.family_name in listing.text
    said_no = await client.post(
        f"/staff/dashboard/follow-up/{patient.public_id}/opt-out",
        data={"_csrf_token": csrf_from(listing.text)},
    )
    assert flashed(said_no) == "follow_up_opted_out"
    assert await AuditEvent.exists().where(
        AuditEvent.action == "dashboard.follow_up_opt_out", AuditEvent.patient == patient.id
    )
    listing = await client.get("/staff/dashboard/follow-up")
    assert patient.family_name not in listing.text
    await client.post(
        "/staff/dashboard/follow-up",
        data={"_csrf_token": csrf_from(listing.text), "patient": patient.public_id},
    )
    assert await _reminders_to(phone) == 0


async def test_the_month_downloads_as_csv_with_every_figure(client: AsyncClient) -> None:
    await staff_signed_in(client, role="admin")
    answer = await client.get("/staff/dashboard/export")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert {row["metric"] for row in rows} >= {"enrollment", "active", "booked_online"}
    assert await AuditEvent.exists().where(AuditEvent.action == "dashboard.export")


async def test_each_location_has_its_own_month(client: AsyncClient) -> None:
    location = await make_location()
    await staff_signed_in(client, role="manager")
    page = await client.get("/staff/dashboard", params={"location": location.code})
    assert page.status_code == 200
    assert f'value="{location.code}" selected' in page.text


def test_every_opportunity_links_to_a_route_that_exists() -> None:
    from app.main import create_app
    from app.services.dashboard.figures import GOALS
    from app.settings import get_settings

    app = create_app(get_settings())
    for *_, route, _permission in GOALS:
        if route is not None:
            assert app.route_reverse(route)
    assert app.route_reverse("staff_dashboard_follow_up")


async def test_each_patient_on_the_follow_up_list_is_audited_as_seen(client: AsyncClient) -> None:
    patient, _ = await _invited_a_week_ago()
    await staff_signed_in(client, role="manager")
    assert (await client.get("/staff/dashboard/follow-up")).status_code == 200
    assert await AuditEvent.exists().where(
        AuditEvent.action == "dashboard.follow_up_list", AuditEvent.patient == patient.id
    )


async def test_the_worker_reminds_by_itself_only_when_the_clinic_turned_it_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, phone = await _invited_a_week_ago()
    assert await follow_ups_send_due() == 0  # off by default
    assert await _reminders_to(phone) == 0
    monkeypatch.setenv("PORTAL_FOLLOW_UP_AUTO", "1")
    monkeypatch.setenv("PORTAL_FOLLOW_UP_MAX", "2")
    get_settings.cache_clear()
    try:
        assert await follow_ups_send_due() >= 1
        assert await _reminders_to(phone) == 1
        # The next round, the same day: the new link is not a week old yet.
        await follow_ups_send_due()
        assert await _reminders_to(phone) == 1
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
