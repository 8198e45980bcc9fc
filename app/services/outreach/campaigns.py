"""Campaigns: the clinic tells a segment of its patients about something the portal can do.

A manager picks a segment (facts the portal already has), a template (app/notices/outreach.py,
each with a deep link), previews how many people it reaches and what they will read, and
schedules it. The worker sends it through the outbox by each person's channel choice, at most
`per_hour` people an hour, outside quiet hours, never as a text to a number that texted STOP,
and to nobody more than MONTHLY_CAP times in 30 days across campaigns.

Never twice: each person's send is a row with a unique key (campaign, patient), inserted in
the same transaction as its outbox message. A worker that dies before the commit leaves
neither; one that dies after leaves both, and the next round skips that person.

Results: sent, delivered (the provider's receipt, or handed over for channels that give
none), clicked (the first-party /go/<token> link, whose random token says nothing about the
person) and acted (booked online, enrolled, or turned on notices after the click).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from app.access import StaffActor
from app.clinic import clinic_today
from app.clock import utcnow
from app.db import lock_names, write_transaction
from app.errors import NotFoundError
from app.i18n import N_
from app.notices.outreach import (
    BOOK_ONLINE,
    FINISH_ENROLLMENT,
    TURN_ON_PUSH,
    YEARLY_CHECKUP,
    Reach,
    Reached,
    send_book_online,
    send_finish_enrollment,
    send_turn_on_push,
    send_yearly_checkup,
)
from app.notices.words import Message, say_in, sms_segments, sms_text
from app.services.audit import audit_insert
from app.services.enrollment import MAX_DATE_ATTEMPTS
from app.services.visits.slots import as_utc, is_unique_violation
from app.settings import get_settings
from app.tables import AccessGrant, Campaign, CampaignSend, EnrollmentInvite, Patient

# Nobody gets more than this many campaign messages in any 30 days, whatever the campaigns.
MONTHLY_CAP = 2
CAP_WINDOW = timedelta(days=30)
# One worker round sends at most this many, so the other duties keep their turn.
ROUND = 50
ADULT_AGE = 18
ENROLL_LINK_LIFETIME = timedelta(days=3)
# A campaign's link makes an enrollment link for this long after the text went out; later, a
# tap leads to the start page (a forwarded or recycled number must not keep a way in).
ENROLL_CLICK_LIFETIME = timedelta(days=30)

SEGMENTS: dict[str, str] = {
    "enrolled_never_booked": N_("Enrolled, never booked online"),
    "invited_never_signed_in": N_("Invited, never signed in"),
    "push_not_enabled": N_("Enrolled, phone notices not turned on"),
    "yearly_due": N_("Due for a yearly check-up"),
}

Sender = Callable[..., Awaitable[Reached]]


@dataclass(frozen=True)
class Template:
    label: str
    message: Message
    send: Sender
    # Where its link leads: a route name (and what the person does there counts as acted).
    target: str


TEMPLATES: dict[str, Template] = {
    "book_online": Template(N_("You can book online"), BOOK_ONLINE, send_book_online, "visits_new"),
    "finish_enrollment": Template(
        N_("Your portal is ready"), FINISH_ENROLLMENT, send_finish_enrollment, "enroll"
    ),
    "turn_on_push": Template(
        N_("Turn on phone notices"), TURN_ON_PUSH, send_turn_on_push, "notifications"
    ),
    "yearly_checkup": Template(
        N_("Yearly check-up"), YEARLY_CHECKUP, send_yearly_checkup, "visits_new"
    ),
}


class CampaignError(ValueError):
    """A campaign form we cannot accept; `reason` names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Recipient:
    patient_id: int
    account_id: int | None
    phone: str | None
    email: str | None
    locale: str | None


def _adult_born_before(today: date) -> date:
    try:
        return today.replace(year=today.year - ADULT_AGE)
    except ValueError:  # 29 February
        return today.replace(year=today.year - ADULT_AGE, day=28)


_SEGMENT_SQL = {
    "enrolled_never_booked": """a.id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM appointment x WHERE x.patient = p.id AND x.channel = 'portal')""",
    "invited_never_signed_in": """g.id IS NULL AND EXISTS (
        SELECT 1 FROM enrollment_invite i WHERE i.patient = p.id)""",
    "push_not_enabled": """a.id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM push_subscription s WHERE s.account = a.id)""",
    "yearly_due": """NOT EXISTS (
        SELECT 1 FROM appointment x WHERE x.patient = p.id AND x.visit_type = 'annual_physical'
        AND x.status IN ('booked', 'fulfilled') AND x.starts_at > {})""",
}


async def segment_audience(segment: str) -> list[Recipient]:
    """The adults in this segment now, each once, newest records first, with how they can be
    reached."""
    if segment not in _SEGMENT_SQL:
        raise CampaignError("segment")
    values: list[Any] = [_adult_born_before(clinic_today())]
    if segment == "yearly_due":
        values.append(utcnow() - timedelta(days=365))
    rows = await Patient.raw(
        f"""
        SELECT p.id, p.phone, p.email, p.preferred_language, a.id AS account
        FROM patient p
        LEFT JOIN access_grant g ON g.patient = p.id AND g.kind = 'self'
             AND g.revoked_at IS NULL
        LEFT JOIN account a ON a.id = g.account AND a.disabled_at IS NULL
        WHERE p.deceased_at IS NULL AND p.birth_date <= {{}} AND {_SEGMENT_SQL[segment]}
        ORDER BY p.id DESC
        """,  # noqa: S608  (only fixed SQL is formatted in)
        *values,
    )
    seen: set[int] = set()
    people = []
    for row in rows:
        if row["id"] in seen:
            continue
        seen.add(row["id"])
        people.append(
            Recipient(
                patient_id=row["id"],
                account_id=row["account"],
                phone=row["phone"],
                email=row["email"],
                locale=row["preferred_language"],
            )
        )
    return people


@dataclass(frozen=True)
class Sample:
    locale: str
    text: str
    segments: int


@dataclass(frozen=True)
class Preview:
    count: int
    samples: list[Sample]


def template_samples(template: str) -> list[Sample]:
    """The text as it will read, in each language, with a link of the real length."""
    chosen = TEMPLATES[template]
    link = f"{get_settings().base_url}/go/{'x' * 22}"
    samples = []
    for locale in ("en", "es"):
        text = sms_text(chosen.message.words(say_in(locale), link=link).sms)
        samples.append(Sample(locale, text, sms_segments(text)))
    return samples


@dataclass(frozen=True)
class Results:
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    acted: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class CampaignLine:
    public_id: str
    name: str
    segment: str
    template: str
    status: str
    send_at: datetime | None
    per_hour: int
    created_at: datetime
    results: Results = field(default_factory=Results)


def _line(row: dict[str, Any], results: Results | None = None) -> CampaignLine:
    return CampaignLine(
        public_id=str(row["public_id"]),
        name=row["name"],
        segment=row["segment"],
        template=row["template"],
        status=row["status"],
        send_at=row["send_at"],
        per_hour=row["per_hour"],
        created_at=row["created_at"],
        results=results or Results(),
    )


_COLUMNS = (
    Campaign.id,
    Campaign.public_id,
    Campaign.name,
    Campaign.segment,
    Campaign.template,
    Campaign.status,
    Campaign.send_at,
    Campaign.per_hour,
    Campaign.created_at,
)


async def campaigns_list(*, staff: StaffActor, limit: int = 50) -> list[CampaignLine]:
    """Campaigns, newest first, with their results (one query each)."""
    rows = await Campaign.select(*_COLUMNS).order_by(Campaign.id, ascending=False).limit(limit)
    results = await _results([row["id"] for row in rows])
    return [_line(row, results.get(row["id"])) for row in rows]


async def campaign_create(*, staff: StaffActor, name: str, segment: str, template: str) -> str:
    """A draft campaign; its public id."""
    name = name.replace("\x00", "").strip()
    if not name or len(name) > 120:
        raise CampaignError("name")
    if segment not in SEGMENTS:
        raise CampaignError("segment")
    if template not in TEMPLATES:
        raise CampaignError("template")
    async with write_transaction():
        campaign = Campaign(
            name=name, segment=segment, template=template, created_by_staff=staff.staff_id
        )
        await Campaign.insert(campaign)
        await audit_insert(
            actor_staff=staff.staff_id,
            action="campaigns.create",
            resource_type="Campaign",
            resource_id=str(campaign.public_id),
            ip=staff.ip,
            user_agent=staff.user_agent,
        )
    return str(campaign.public_id)


async def _campaign_row(public_id: str) -> dict[str, Any]:
    row = await Campaign.select(*_COLUMNS).where(Campaign.public_id == public_id).first()
    if row is None:
        raise NotFoundError(public_id)
    return row


@dataclass(frozen=True)
class CampaignView:
    campaign: CampaignLine
    preview: Preview


async def campaign_open(*, staff: StaffActor, public_id: str) -> CampaignView:
    """A campaign with its preview (how many it reaches now, and its text) and results."""
    row = await _campaign_row(public_id)
    results = await _results([row["id"]])
    audience = await segment_audience(row["segment"])
    return CampaignView(
        campaign=_line(row, results.get(row["id"])),
        preview=Preview(count=len(audience), samples=template_samples(row["template"])),
    )


async def campaign_schedule(
    *, staff: StaffActor, public_id: str, send_at: datetime | None, per_hour: int
) -> None:
    """From draft to scheduled: the worker starts at `send_at` (now when None)."""
    if not 1 <= per_hour <= 10_000:
        raise CampaignError("per_hour")
    async with write_transaction():
        row = await _campaign_row(public_id)
        if row["status"] != "draft":
            raise CampaignError("status")
        await Campaign.update(
            {
                Campaign.status: "scheduled",
                Campaign.send_at: send_at or utcnow(),
                Campaign.per_hour: per_hour,
            }
        ).where(Campaign.id == row["id"])
        await audit_insert(
            actor_staff=staff.staff_id,
            action="campaigns.schedule",
            resource_type="Campaign",
            resource_id=public_id,
            ip=staff.ip,
            user_agent=staff.user_agent,
        )


async def _results(campaign_ids: list[int]) -> dict[int, Results]:
    if not campaign_ids:
        return {}
    placeholders = ", ".join("{}" for _ in campaign_ids)
    rows = await CampaignSend.raw(
        f"""
        SELECT s.campaign,
          SUM(CASE WHEN s.channel <> '' THEN 1 ELSE 0 END) AS sent,
          SUM(CASE WHEN s.channel = '' THEN 1 ELSE 0 END) AS skipped,
          SUM(CASE WHEN s.channel <> '' AND EXISTS (
                SELECT 1 FROM outbox o WHERE o.delivered_at IS NOT NULL
                AND (o.idempotency_key = s.outbox_key OR o.notice = s.outbox_key))
              THEN 1 ELSE 0 END) AS delivered,
          SUM(CASE WHEN s.clicked_at IS NOT NULL THEN 1 ELSE 0 END) AS clicked,
          SUM(CASE WHEN s.clicked_at IS NOT NULL AND (
                (c.template IN ('book_online', 'yearly_checkup') AND EXISTS (
                  SELECT 1 FROM appointment x WHERE x.patient = s.patient
                  AND x.channel = 'portal' AND x.created_at >= s.clicked_at))
             OR (c.template = 'finish_enrollment' AND EXISTS (
                  SELECT 1 FROM access_grant g WHERE g.patient = s.patient
                  AND g.kind = 'self' AND g.created_at >= s.clicked_at))
             OR (c.template = 'turn_on_push' AND EXISTS (
                  SELECT 1 FROM push_subscription d WHERE d.account = s.account
                  AND d.created_at >= s.clicked_at)))
              THEN 1 ELSE 0 END) AS acted
        FROM campaign_send s JOIN campaign c ON c.id = s.campaign
        WHERE s.campaign IN ({placeholders})
        GROUP BY s.campaign
        """,  # noqa: S608  (only placeholders are formatted in)
        *campaign_ids,
    )
    return {
        row["campaign"]: Results(
            sent=int(row["sent"] or 0),
            delivered=int(row["delivered"] or 0),
            clicked=int(row["clicked"] or 0),
            acted=int(row["acted"] or 0),
            skipped=int(row["skipped"] or 0),
        )
        for row in rows
    }


# The worker ---------------------------------------------------------------------------------


async def campaigns_send_due(*, only: str | None = None) -> int:
    """One round for every scheduled campaign whose time has come (or just the one with
    the public id `only`); how many were sent. A campaign with nobody left to send to is
    done."""
    now = utcnow()
    query = Campaign.select(
        Campaign.id, Campaign.segment, Campaign.template, Campaign.per_hour
    ).where(Campaign.status == "scheduled", Campaign.send_at <= now)
    if only is not None:
        query = query.where(Campaign.public_id == only)
    due = await query
    sent = 0
    for campaign in due:
        sent += await _campaign_round(campaign, now)
    return sent


async def _campaign_round(campaign: dict[str, Any], now: datetime) -> int:
    last_hour = await CampaignSend.count().where(
        CampaignSend.campaign == campaign["id"],
        CampaignSend.channel != "",
        CampaignSend.created_at > now - timedelta(hours=1),
    )
    room = min(campaign["per_hour"] - last_hour, ROUND)
    done = {
        row["patient"]
        for row in await CampaignSend.select(CampaignSend.patient).where(
            CampaignSend.campaign == campaign["id"]
        )
    }
    waiting = [r for r in await segment_audience(campaign["segment"]) if r.patient_id not in done]
    if not waiting:
        await Campaign.update({Campaign.status: "done", Campaign.finished_at: now}).where(
            Campaign.id == campaign["id"], Campaign.status == "scheduled"
        )
        return 0
    sent = 0
    for recipient in waiting:
        if sent >= room:
            break
        try:
            if await _send_one(campaign, recipient):
                sent += 1
        except Exception as error:
            if not is_unique_violation(error):
                raise
            # Another worker sent to this person first: the key kept it to one.
    return sent


async def _send_one(campaign: dict[str, Any], recipient: Recipient) -> bool:
    """The row first, then the message, in one transaction; whether something went."""
    async with write_transaction():
        # Two workers sending two campaigns to one person must not both pass the monthly cap.
        await lock_names(f"campaign.cap:{recipient.patient_id}")
        once_key = f"{campaign['id']}:{recipient.patient_id}"
        if await CampaignSend.exists().where(CampaignSend.once_key == once_key):
            return False
        token = secrets.token_urlsafe(16)
        send = CampaignSend(
            campaign=campaign["id"],
            patient=recipient.patient_id,
            account=recipient.account_id,
            once_key=once_key,
            token=token,
        )
        await CampaignSend.insert(send)
        recent = await CampaignSend.count().where(
            CampaignSend.patient == recipient.patient_id,
            CampaignSend.channel != "",
            CampaignSend.created_at > utcnow() - CAP_WINDOW,
        )
        if recent >= MONTHLY_CAP:
            reached = Reached("", None, "monthly_cap")
        else:
            path = f"/go/{token}"
            reached = await TEMPLATES[campaign["template"]].send(
                reach=Reach(
                    account_id=recipient.account_id,
                    phone=recipient.phone,
                    email=recipient.email,
                    locale=recipient.locale,
                ),
                link=f"{get_settings().base_url}{path}",
                path=path,
                key=secrets.token_hex(16),
            )
        await CampaignSend.update(
            {
                CampaignSend.channel: reached.channel,
                CampaignSend.skipped: reached.skipped,
                CampaignSend.outbox_key: reached.key,
            }
        ).where(CampaignSend.id == send.id)
    return bool(reached.channel)


# The link -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a campaign link leads: a route name (and the enrollment link's token)."""

    route: str
    token: str | None = None


# Programs that fetch a link to draw its preview (in a chat, a phone's messages, a mail
# filter) before, or instead of, a person tapping it. Generic "bot/", "crawler" and "spider"
# catch most; the rest name themselves. Not "bot" alone: phones such as CUBOT carry it.
LINK_PREVIEWERS = re.compile(
    r"facebookexternalhit|facebot|whatsapp|slackbot|slack-imgproxy|twitterbot|telegrambot"
    r"|discordbot|linkedinbot|skypeuripreview|googlebot|bingbot|applebot|redditbot|pinterest"
    r"|embedly|iframely|vkshare|mastodon|preview|bot/|crawler|spider",
    re.IGNORECASE,
)


def is_link_preview(user_agent: str) -> bool:
    return bool(LINK_PREVIEWERS.search(user_agent))


async def campaign_click(token: str, *, user_agent: str = "") -> Target | None:
    """Count the first click on a campaign link and say where it leads; None for a token
    that is no campaign's. An enrollment link is made fresh for the record (the older one
    stops working), unless the record has been enrolled meanwhile. A link previewer is not
    a click: it gets the clinic's start page or the screen, and nothing is counted or made."""
    if not token or len(token) > 43:
        return None
    if is_link_preview(user_agent):
        row = (
            await CampaignSend.select(CampaignSend.campaign.template)
            .where(CampaignSend.token == token)
            .first()
        )
        if row is None:
            return None
        target = TEMPLATES[row["campaign.template"]].target
        return Target("landing" if target == "enroll" else target)
    async with write_transaction():
        row = (
            await CampaignSend.select(
                CampaignSend.id,
                CampaignSend.patient,
                CampaignSend.channel,
                CampaignSend.clicked_at,
                CampaignSend.created_at,
                CampaignSend.campaign.template,
            )
            .where(CampaignSend.token == token)
            .first()
        )
        if row is None:
            return None
        if row["clicked_at"] is None:
            await CampaignSend.update({CampaignSend.clicked_at: utcnow()}).where(
                CampaignSend.id == row["id"]
            )
        target = TEMPLATES[row["campaign.template"]].target
        if target != "enroll":
            return Target(target)
        if as_utc(row["created_at"]) < utcnow() - ENROLL_CLICK_LIFETIME:
            return Target("landing")  # an old text: the clinic invites again
        return await _fresh_enroll_link(row["patient"], row["channel"])


async def _fresh_enroll_link(patient_id: int, channel: str) -> Target:
    if await AccessGrant.exists().where(
        AccessGrant.patient == patient_id,
        AccessGrant.kind == "self",
        AccessGrant.revoked_at.is_null(),
    ):
        return Target("landing")
    now = utcnow()
    # Wrong dates of birth on the record's recent links carry over to the new one: a click
    # must not give anyone holding the text five fresh tries. Once locked, the clinic invites.
    tried = await EnrollmentInvite.select(EnrollmentInvite.failed_attempts).where(
        EnrollmentInvite.patient == patient_id,
        EnrollmentInvite.used_at.is_null(),
        EnrollmentInvite.expires_at > now,
    )
    failed = max((row["failed_attempts"] for row in tried), default=0)
    if failed >= MAX_DATE_ATTEMPTS:
        return Target("landing")
    await EnrollmentInvite.update({EnrollmentInvite.voided_at: now}).where(
        EnrollmentInvite.patient == patient_id,
        EnrollmentInvite.used_at.is_null(),
        EnrollmentInvite.voided_at.is_null(),
    )
    token = secrets.token_urlsafe(24)
    invite = EnrollmentInvite(
        patient=patient_id,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        via=channel if channel in ("sms", "email") else "sms",
        expires_at=now + ENROLL_LINK_LIFETIME,
        failed_attempts=failed,
    )
    await EnrollmentInvite.insert(invite)
    await audit_insert(
        patient=patient_id,
        action="enrollment.invite.campaign",
        resource_type="EnrollmentInvite",
        resource_id=str(invite.public_id),
    )
    return Target("enroll", token)
