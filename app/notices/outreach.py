"""Outreach: the clinic's campaigns (one function per template, each with a first-party link
that says nothing about the person) and the answers to texts people send the clinic's number.

A campaign goes by the person's own choice of channel for news (else for visits), waiting out
their quiet hours (the clinic's evening and night when they set none); a text only while the
number has not texted STOP. The answers to a text are texts the person asked for, so they go
even to a number that opted out (the outbox's REQUESTED_KINDS): the answer to STOP itself,
HELP, and what became of a "C" or an "X". None of them names a patient or a visit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from app.clinic import clinic_profile
from app.clock import utcnow
from app.i18n import N_
from app.notices.delivery import send_to
from app.notices.words import Message, Say, Wording, say_in
from app.services.notifications import Preferences, preferences_for, quiet_until
from app.services.outbox import sms_allowed
from app.services.push import push_enqueue

# The kind of every campaign message in the outbox (never "requested": STOP stops it).
CAMPAIGN_KIND = "campaign"
REPLY_KIND = "sms_reply"
# People who chose no quiet hours still get no campaign text between 21:00 and 08:00.
CLINIC_QUIET = Preferences({}, 21 * 60, 8 * 60)
# Who to call, when the clinic has no phone on its profile.
N_("the clinic")

# Campaign templates: each leads to one screen of the portal through its /go/ link.
BOOK_ONLINE = Message(
    "campaign_book_online",
    subject=N_("Book your visits online"),
    text=N_(
        "%(clinic)s: did you know you can book your visits online, any time? "
        "Pick a time: %(link)s Reply STOP to end texts."
    ),
)
FINISH_ENROLLMENT = Message(
    "campaign_finish_enrollment",
    subject=N_("Your patient portal is ready"),
    text=N_(
        "%(clinic)s: your patient portal is ready for you. It takes a minute to set up: "
        "%(link)s Reply STOP to end texts."
    ),
)
TURN_ON_PUSH = Message(
    "campaign_turn_on_push",
    subject=N_("Get portal notices on your phone"),
    text=N_(
        "%(clinic)s: the patient portal can tell you on your phone when something new is "
        "waiting. Turn it on: %(link)s Reply STOP to end texts."
    ),
)
YEARLY_CHECKUP = Message(
    "campaign_yearly_checkup",
    subject=N_("Time for a yearly check-up"),
    text=N_(
        "%(clinic)s: it may be time for your yearly check-up. Book a time online: %(link)s "
        "Reply STOP to end texts."
    ),
)

# Answers to texts sent to the clinic's number.
STOPPED = Message(
    "sms_stopped",
    subject=N_("Texts stopped"),
    text=N_(
        "%(clinic)s: you will get no more texts from us, except codes you ask for. "
        "Text START to get them again."
    ),
)
STARTED = Message(
    "sms_started",
    subject=N_("Texts on again"),
    text=N_("%(clinic)s: texts are on again. Text STOP to end them, HELP for help."),
)
HELP = Message(
    "sms_help",
    subject=N_("Texts from the clinic"),
    text=N_(
        "%(clinic)s patient portal texts. Reply C to confirm or X to cancel your next visit, "
        "STOP to end texts. Call %(phone)s for help. Emergencies: 911."
    ),
)
CONFIRMED = Message(
    "sms_confirmed",
    subject=N_("Visit confirmed"),
    text=N_("%(clinic)s: thank you, your visit is confirmed. See you then."),
)
CANCELLED = Message(
    "sms_cancelled",
    subject=N_("Visit cancelled"),
    text=N_("%(clinic)s: your visit is cancelled. You can book another time in the portal."),
)
CALL_US = Message(
    "sms_call_us",
    subject=N_("Please call the clinic"),
    text=N_(
        "%(clinic)s: we could not change a visit by text this time. Open the patient portal "
        "or call %(phone)s."
    ),
)
RECEIVED = Message(
    "sms_received",
    subject=N_("We got your text"),
    text=N_("%(clinic)s: we got your text and will answer soon. For an emergency call 911."),
)
UNKNOWN_NUMBER = Message(
    "sms_unknown_number",
    subject=N_("Please call the clinic"),
    text=N_(
        "%(clinic)s: we could not match this number to a patient, so nobody will read this "
        "text. Please call %(phone)s."
    ),
)


@dataclass(frozen=True)
class Reach:
    """How a campaign reaches one person: their account (with its choices), else the phone
    and email on the record, in the record's language."""

    account_id: int | None
    phone: str | None
    email: str | None
    locale: str | None = None


@dataclass(frozen=True)
class Reached:
    channel: str  # push | sms | email, or "" when nothing could go
    key: str | None = None  # the outbox key (for a push: the key its device rows share)
    skipped: str = ""  # opted_out | no_contact | no_consent


def _push_words(words: Wording, _: Say) -> Wording:
    return replace(
        words, push_title=words.email_subject, push_body=_("Tap to open the patient portal.")
    )


async def _campaign(message: Message, *, reach: Reach, link: str, path: str, key: str) -> Reached:
    """One campaign message to one person by the first channel they chose that can take it."""
    now = utcnow()
    wanted: tuple[str, ...] = ("sms", "email")
    prefs: Preferences = CLINIC_QUIET
    locale = reach.locale
    if reach.account_id is not None:
        prefs = await preferences_for(reach.account_id)
        locale = prefs.locale or locale
        # Clinic news by the ways chosen for it, else the ways chosen for visits (news is off
        # until chosen); someone who turned both off gets no campaign at all.
        wanted = prefs.wants("news") or prefs.wants("appointments")
        if not wanted:
            return Reached("", None, "no_consent")
        if prefs.quiet_start is None:
            prefs = replace(prefs, quiet_start=CLINIC_QUIET.quiet_start)
            prefs = replace(prefs, quiet_end=CLINIC_QUIET.quiet_end)
    wait: datetime | None = quiet_until(prefs, now)
    _ = say_in(locale)
    words = _push_words(message.words(_, link=link), _)
    opted_out = False
    for channel in ("push", "sms", "email"):
        if channel not in wanted:
            continue
        if channel == "push" and reach.account_id is not None:
            if await push_enqueue(
                account_id=reach.account_id,
                title=words.push_title,
                body=words.push_body,
                url=path,
                tag=f"campaign-{key}",
                not_before=wait,
                kind=CAMPAIGN_KIND,
                notice=key,
            ):
                return Reached("push", key)
        elif channel == "sms" and reach.phone:
            if not await sms_allowed(reach.phone, kind=CAMPAIGN_KIND):
                opted_out = True
                continue
            await send_to(
                to=("sms", reach.phone), words=words, kind=CAMPAIGN_KIND, not_before=wait, key=key
            )
            return Reached("sms", key)
        elif channel == "email" and reach.email:
            await send_to(to=("email", reach.email), words=words, kind=CAMPAIGN_KIND, key=key)
            return Reached("email", key)
    return Reached("", None, "opted_out" if opted_out else "no_contact")


async def send_book_online(*, reach: Reach, link: str, path: str, key: str) -> Reached:
    """ "You can book your visits online": the link opens booking."""
    return await _campaign(BOOK_ONLINE, reach=reach, link=link, path=path, key=key)


async def send_finish_enrollment(*, reach: Reach, link: str, path: str, key: str) -> Reached:
    """ "Your portal is ready": the link opens a fresh enrollment link for the record."""
    return await _campaign(FINISH_ENROLLMENT, reach=reach, link=link, path=path, key=key)


async def send_turn_on_push(*, reach: Reach, link: str, path: str, key: str) -> Reached:
    """ "Get notices on your phone": the link opens the notification settings."""
    return await _campaign(TURN_ON_PUSH, reach=reach, link=link, path=path, key=key)


async def send_yearly_checkup(*, reach: Reach, link: str, path: str, key: str) -> Reached:
    """ "Time for a yearly check-up": the link opens booking."""
    return await _campaign(YEARLY_CHECKUP, reach=reach, link=link, path=path, key=key)


async def _reply(message: Message, *, number: str, locale: str | None) -> None:
    _ = say_in(locale)
    words = message.words(_, phone=clinic_profile().phone or _("the clinic"))
    await send_to(to=("sms", number), words=words, kind=REPLY_KIND)


async def send_texts_stopped(*, number: str, locale: str | None) -> None:
    """The one answer to STOP: nothing else but asked-for codes will follow."""
    await _reply(STOPPED, number=number, locale=locale)


async def send_texts_started(*, number: str, locale: str | None) -> None:
    await _reply(STARTED, number=number, locale=locale)


async def send_texts_help(*, number: str, locale: str | None) -> None:
    await _reply(HELP, number=number, locale=locale)


async def send_visit_confirmed_by_text(*, number: str, locale: str | None) -> None:
    await _reply(CONFIRMED, number=number, locale=locale)


async def send_visit_cancelled_by_text(*, number: str, locale: str | None) -> None:
    await _reply(CANCELLED, number=number, locale=locale)


async def send_visit_not_changed_by_text(*, number: str, locale: str | None) -> None:
    """A "C" or an "X" with no single upcoming visit to apply to, or too late to cancel."""
    await _reply(CALL_US, number=number, locale=locale)


async def send_text_received(*, number: str, locale: str | None) -> None:
    await _reply(RECEIVED, number=number, locale=locale)


async def send_text_from_unknown_number(*, number: str, locale: str | None) -> None:
    await _reply(UNKNOWN_NUMBER, number=number, locale=locale)
