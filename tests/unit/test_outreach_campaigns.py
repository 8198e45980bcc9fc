"""Campaigns: who each segment finds, how the worker sends (once per person whatever
happens to it, by the person's channel, throttled, in daylight, within a monthly cap, never as
a text to a number that said STOP) and what the results count."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from app.channels import Channel
from app.channels.email import ConsoleEmail
from app.channels.push import WebPushChannel
from app.channels.sms import ConsoleSMS
from app.clinic import clinic_profile
from app.clock import set_clock
from app.db import write_transaction
from app.services.enrollment import MAX_DATE_ATTEMPTS, EnrollmentError, enroll_confirm
from app.services.notifications import preferences_save
from app.services.outbox import outbox_deliver
from app.services.outreach.campaigns import (
    MONTHLY_CAP,
    campaign_click,
    campaign_create,
    campaign_open,
    campaign_schedule,
    campaigns_send_due,
    is_link_preview,
    segment_audience,
    template_samples,
)
from app.services.outreach.texts import sms_inbound
from app.settings import get_settings
from app.tables import (
    Appointment,
    CampaignSend,
    EnrollmentInvite,
    OutboxMessage,
    Patient,
)
from tests.factories import (
    make_patient,
    make_push_device,
    make_reachable_person,
    make_staff,
    make_visit,
    phone_number,
    staff_actor_for,
    with_contacts,
)


async def _campaign(
    segment: str = "enrolled_never_booked", template: str = "book_online", *, per_hour: int = 10_000
) -> str:
    manager = staff_actor_for(await make_staff("manager"))
    public_id = await campaign_create(
        staff=manager, name="Book online", segment=segment, template=template
    )
    await campaign_schedule(staff=manager, public_id=public_id, send_at=None, per_hour=per_hour)
    return public_id


async def _sends(patient_id: int) -> list[dict[str, object]]:
    return list(
        await CampaignSend.select(
            CampaignSend.campaign, CampaignSend.channel, CampaignSend.skipped, CampaignSend.token
        ).where(CampaignSend.patient == patient_id)
    )


async def _campaign_texts(phone: str) -> int:
    return int(
        await OutboxMessage.count().where(
            OutboxMessage.recipient == phone, OutboxMessage.kind == "campaign"
        )
    )


async def _round_that_dies(campaign: str) -> None:
    async with write_transaction():
        await campaigns_send_due(only=campaign)
        raise RuntimeError("worker killed")


async def test_a_campaign_never_sends_twice_to_a_person_after_a_worker_crash() -> None:
    person, phone, _ = await make_reachable_person("Crash")
    campaign = await _campaign()

    # The worker dies before its transaction commits: neither the row nor the text is left.
    with pytest.raises(RuntimeError, match="killed"):
        await _round_that_dies(campaign)
    assert await _sends(person.patient.id) == []
    assert await _campaign_texts(phone) == 0

    # The next round sends; the worker dies after the commit, before it marks the campaign
    # done; two workers then take the next rounds at once.
    assert await campaigns_send_due(only=campaign) >= 1
    await asyncio.gather(campaigns_send_due(only=campaign), campaigns_send_due(only=campaign))
    await campaigns_send_due(only=campaign)

    sends = await _sends(person.patient.id)
    assert [send["channel"] for send in sends] == ["sms"]
    assert await _campaign_texts(phone) == 1

    # The database itself refuses a second row for the same person and campaign.
    duplicate = CampaignSend(
        campaign=sends[0]["campaign"],
        patient=person.patient.id,
        once_key=f"{sends[0]['campaign']}:{person.patient.id}",
        token="another-token",
    )
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        await CampaignSend.insert(duplicate)


async def test_a_number_that_texted_stop_gets_no_campaign_text() -> None:
    person, phone, _ = await make_reachable_person("Stopper")
    await sms_inbound(number=phone, body="ALTO")
    campaign = await _campaign()
    await campaigns_send_due(only=campaign)
    assert [(s["channel"], s["skipped"]) for s in await _sends(person.patient.id)] == [
        ("", "opted_out")
    ]
    assert await _campaign_texts(phone) == 0


async def test_nobody_gets_more_than_the_monthly_cap_across_campaigns() -> None:
    person, phone, _ = await make_reachable_person("Capped")
    for _ in range(MONTHLY_CAP + 1):
        await campaigns_send_due(only=await _campaign())
    sends = await _sends(person.patient.id)
    assert [s["channel"] for s in sends] == ["sms"] * MONTHLY_CAP + [""]
    assert sends[-1]["skipped"] == "monthly_cap"
    assert await _campaign_texts(phone) == MONTHLY_CAP


async def test_a_campaign_keeps_to_its_hourly_rate() -> None:
    await make_reachable_person("First")
    await make_reachable_person("Second")
    campaign = await _campaign(per_hour=1)
    assert await campaigns_send_due(only=campaign) == 1
    assert await campaigns_send_due(only=campaign) == 0
    # An hour later the next one goes.
    later = datetime.now(UTC) + timedelta(hours=1, minutes=1)
    set_clock(lambda: later)
    assert await campaigns_send_due(only=campaign) == 1


async def test_a_campaign_text_waits_out_the_night() -> None:
    _, phone, _ = await make_reachable_person("Owl")
    zone = clinic_profile().timezone
    night = datetime.now(zone).replace(hour=23, minute=0, second=0, microsecond=0)
    set_clock(lambda: night.astimezone(UTC))
    await campaigns_send_due(only=await _campaign())
    row = await OutboxMessage.select(OutboxMessage.next_attempt_at).where(
        OutboxMessage.recipient == phone, OutboxMessage.kind == "campaign"
    )
    assert row[0]["next_attempt_at"].astimezone(zone).hour == 8


async def test_a_person_who_chose_phone_notices_gets_a_push_not_a_text() -> None:
    person, phone, _ = await make_reachable_person("Pusher")
    await make_push_device(person.account.id)
    await campaigns_send_due(only=await _campaign())
    assert [s["channel"] for s in await _sends(person.patient.id)] == ["push"]
    assert await _campaign_texts(phone) == 0


async def test_each_segment_finds_the_people_it_names() -> None:
    booked_online, _, _ = await make_reachable_person("Booker")
    visit = await make_visit(booked_online.patient, starts_at=datetime.now(UTC) + timedelta(days=5))
    await Appointment.update({Appointment.channel: "portal"}).where(Appointment.id == visit.id)
    never_booked, _, _ = await make_reachable_person("Never")
    invited = await make_patient(given="Invited")
    await with_contacts(invited, phone=phone_number())
    await EnrollmentInvite.insert(
        EnrollmentInvite(
            patient=invited.id,
            token_hash=f"{invited.id:064d}",
            via="sms",
            expires_at=datetime.now(UTC) + timedelta(days=3),
        )
    )
    with_push, _, _ = await make_reachable_person("Pushy")
    await make_push_device(with_push.account.id)
    checked_up, _, _ = await make_reachable_person("Fit")
    physical = await make_visit(
        checked_up.patient,
        starts_at=datetime.now(UTC) - timedelta(days=100),
        visit_type="annual_physical",
    )
    await Appointment.update({Appointment.status: "fulfilled"}).where(Appointment.id == physical.id)
    child = await make_patient(given="Kid", birth=datetime.now(UTC).date().replace(year=2020))

    async def members(segment: str) -> set[int]:
        return {r.patient_id for r in await segment_audience(segment)}

    enrolled_never_booked = await members("enrolled_never_booked")
    assert never_booked.patient.id in enrolled_never_booked
    assert booked_online.patient.id not in enrolled_never_booked
    invited_never = await members("invited_never_signed_in")
    assert invited.id in invited_never
    assert never_booked.patient.id not in invited_never
    no_push = await members("push_not_enabled")
    assert never_booked.patient.id in no_push
    assert with_push.patient.id not in no_push
    yearly = await members("yearly_due")
    assert never_booked.patient.id in yearly
    assert checked_up.patient.id not in yearly
    assert child.id not in enrolled_never_booked | invited_never | yearly


async def test_the_results_count_sent_delivered_clicked_and_booked_after_the_click() -> None:
    person, phone, _ = await make_reachable_person("Clicker")
    manager = staff_actor_for(await make_staff("manager"))
    campaign = await _campaign()
    await campaigns_send_due(only=campaign)
    text = await OutboxMessage.select(OutboxMessage.body).where(
        OutboxMessage.recipient == phone, OutboxMessage.kind == "campaign"
    )
    link = f"{get_settings().base_url}/go/"
    assert link in text[0]["body"]
    token = text[0]["body"].split(link, 1)[1].split()[0]

    channels: dict[str, Channel] = {
        "sms": ConsoleSMS(),
        "email": ConsoleEmail(),
        "push": WebPushChannel(
            private_key_pem=get_settings().vapid_private_key, subject="mailto:t@example.org"
        ),
    }
    while await outbox_deliver(channels=channels, worker="test", lease=timedelta(minutes=1)):
        pass
    target = await campaign_click(token)
    assert target is not None
    assert target.route == "visits_new"
    assert await campaign_click(token) is not None  # a second click counts once
    assert await campaign_click("not-a-token") is None
    visit = await make_visit(person.patient, starts_at=datetime.now(UTC) + timedelta(days=5))
    await Appointment.update(
        {Appointment.channel: "portal", Appointment.created_at: datetime.now(UTC)}
    ).where(Appointment.id == visit.id)

    results = (await campaign_open(staff=manager, public_id=campaign)).campaign.results
    assert results.sent >= 1
    assert results.delivered >= 1
    assert (results.clicked, results.acted) == (1, 1)


async def test_an_enrollment_campaign_link_opens_a_fresh_enrollment_link() -> None:
    invited = await make_patient(given="Ivy")
    phone = phone_number()
    await with_contacts(invited, phone=phone)
    await Patient.update({Patient.preferred_language: "es"}).where(Patient.id == invited.id)
    await EnrollmentInvite.insert(
        EnrollmentInvite(
            patient=invited.id,
            token_hash=f"{invited.id + 1:064d}",
            via="sms",
            expires_at=datetime.now(UTC) + timedelta(days=3),
        )
    )
    await campaigns_send_due(only=await _campaign("invited_never_signed_in", "finish_enrollment"))
    body = (
        await OutboxMessage.select(OutboxMessage.body).where(
            OutboxMessage.recipient == phone, OutboxMessage.kind == "campaign"
        )
    )[0]["body"]
    assert "PARAR" in body  # in the record's language
    token = body.split("/go/", 1)[1].split()[0]
    # A messages app drawing the preview neither counts nor replaces the invitation.
    preview = await campaign_click(token, user_agent="WhatsApp/2.23.20 A")
    assert preview is not None
    assert (preview.route, preview.token) == ("landing", None)
    assert await EnrollmentInvite.count().where(
        EnrollmentInvite.patient == invited.id,
        EnrollmentInvite.voided_at.is_null(),
        EnrollmentInvite.token_hash == f"{invited.id + 1:064d}",
    )
    target = await campaign_click(token)
    assert target is not None
    assert target.route == "enroll"
    assert target.token
    assert (
        await EnrollmentInvite.count().where(
            EnrollmentInvite.patient == invited.id, EnrollmentInvite.voided_at.is_null()
        )
        == 1
    )


@pytest.mark.parametrize(
    "template", ["book_online", "finish_enrollment", "turn_on_push", "yearly_checkup"]
)
def test_each_template_fits_two_segments_in_both_languages(template: str) -> None:
    samples = template_samples(template)
    assert [sample.locale for sample in samples] == ["en", "es"]
    assert all(sample.segments <= 2 for sample in samples), samples


def _channels() -> dict[str, Channel]:
    return {
        "sms": ConsoleSMS(),
        "email": ConsoleEmail(),
        "push": WebPushChannel(
            private_key_pem=get_settings().vapid_private_key, subject="mailto:t@example.org"
        ),
    }


async def test_a_finish_enrollment_link_never_gives_fresh_date_of_birth_tries() -> None:
    """Each tap makes a new enrollment link, but wrong dates of birth carry over to it: once
    five were wrong, the link leads to the start page and the clinic invites again."""
    birth = date(1971, 3, 9)
    invited = await make_patient(given="Invited", birth=birth)
    await with_contacts(invited, phone=phone_number(), phone_is_own=True)
    await EnrollmentInvite.insert(
        EnrollmentInvite(
            patient=invited.id,
            token_hash=f"{invited.id + 7:064d}",
            via="sms",
            expires_at=datetime.now(UTC) + timedelta(days=3),
        )
    )
    await campaigns_send_due(only=await _campaign("invited_never_signed_in", "finish_enrollment"))
    go = (await CampaignSend.select(CampaignSend.token).where(CampaignSend.patient == invited.id))[
        0
    ]["token"]
    guess = date(1970, 1, 1)
    wrong = 0
    for _ in range(3):
        target = await campaign_click(go)
        assert target is not None
        if target.route != "enroll":
            break
        assert target.token is not None
        for _ in range(2):
            with pytest.raises(EnrollmentError):
                await enroll_confirm(
                    token=target.token,
                    birth_date=guess,
                    lifetime=timedelta(hours=1),
                    ip="203.0.113.9",
                    user_agent="test",
                )
            wrong += 1
            guess += timedelta(days=1)
            if wrong >= MAX_DATE_ATTEMPTS:
                break
    last = await campaign_click(go)
    assert wrong == MAX_DATE_ATTEMPTS
    assert last is not None
    assert (last.route, last.token) == ("landing", None)


async def test_an_old_finish_enrollment_text_no_longer_makes_a_link() -> None:
    invited = await make_patient(given="Late")
    await with_contacts(invited, phone=phone_number(), phone_is_own=True)
    await EnrollmentInvite.insert(
        EnrollmentInvite(
            patient=invited.id,
            token_hash=f"{invited.id + 9:064d}",
            via="sms",
            expires_at=datetime.now(UTC) + timedelta(days=3),
        )
    )
    await campaigns_send_due(only=await _campaign("invited_never_signed_in", "finish_enrollment"))
    go = (await CampaignSend.select(CampaignSend.token).where(CampaignSend.patient == invited.id))[
        0
    ]["token"]
    later = datetime.now(UTC) + timedelta(days=31)
    set_clock(lambda: later)
    target = await campaign_click(go)
    assert target is not None
    assert target.route == "landing"


async def test_a_text_held_for_the_morning_is_not_sent_after_a_stop_in_the_night() -> None:
    _, phone, _ = await make_reachable_person("Sleeper")
    night = datetime.now(clinic_profile().timezone).replace(hour=22, minute=0, second=0)
    set_clock(lambda: night.astimezone(UTC))
    await campaigns_send_due(only=await _campaign())
    assert await _campaign_texts(phone) == 1
    set_clock(lambda: (night + timedelta(minutes=30)).astimezone(UTC))
    assert await sms_inbound(number=phone, body="STOP", provider_id=f"SMs{phone[1:]}") == "stop"

    set_clock(lambda: (night + timedelta(hours=10, minutes=5)).astimezone(UTC))
    while await outbox_deliver(channels=_channels(), worker="test", lease=timedelta(minutes=1)):
        pass

    rows = await OutboxMessage.select(OutboxMessage.status, OutboxMessage.last_error).where(
        OutboxMessage.recipient == phone, OutboxMessage.kind == "campaign"
    )
    assert rows == [{"status": "dead", "last_error": "opted_out"}]


async def test_someone_who_turned_every_notice_off_gets_no_campaign() -> None:
    person, phone, _ = await make_reachable_person("NoNews")
    await preferences_save(
        account_id=person.account.id,
        channels={c: () for c in ("messages", "results", "appointments", "bills", "news")},
        quiet=None,
    )
    await campaigns_send_due(only=await _campaign())
    sends = await _sends(person.patient.id)
    assert [(s["channel"], s["skipped"]) for s in sends] == [("", "no_consent")]
    assert await _campaign_texts(phone) == 0


@pytest.mark.parametrize(
    ("user_agent", "preview"),
    [
        ("facebookexternalhit/1.1 Facebot Twitterbot/1.0", True),  # Apple Messages
        ("WhatsApp/2.23.20.0 A", True),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", True),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        ("TelegramBot (like TwitterBot)", True),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15", False),
        ("Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 Chrome/120", False),
        ("", False),
    ],
)
def test_a_link_previewer_is_told_from_a_person(user_agent: str, preview: bool) -> None:
    assert is_link_preview(user_agent) is preview
