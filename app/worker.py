"""The worker: `portal worker`, or a task inside the server in the embedded default. It
delivers the outbox, runs the timed duties and seals audit rows into the hash chain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from datetime import timedelta

from app.channels import Channel
from app.channels.email import ConsoleEmail, SMTPEmail
from app.channels.push import WebPushChannel
from app.channels.sms import ConsoleSMS, TwilioSMS
from app.clinic import clinic_profile_load, clinic_profile_set
from app.db import write_transaction
from app.notices import delivery  # noqa: F401  (its import sets the push fallback)
from app.services.audit import SEAL_BATCH, audit_seal, audit_seal_release
from app.services.bills.checkout import checkout_payments_settle
from app.services.bills.notify import bill_notices_send
from app.services.bills.plans import plan_instalments_run
from app.services.caregivers import guardian_grants_end_at_adulthood
from app.services.dashboard import dashboard_refresh
from app.services.dashboard.follow_up import follow_ups_send_due
from app.services.outbox import outbox_deliver, outbox_purge
from app.services.outreach import campaigns_send_due
from app.services.outreach.texts import sms_received_purge
from app.services.results.release import results_release_due
from app.services.self_access import self_grants_outside_age_rules
from app.services.visits import visit_reminders_send
from app.services.visits.slots import slots_generate
from app.services.visits.waitlist import waitlist_offers_expire
from app.settings import Settings, get_settings

log = logging.getLogger("portal.worker")

LEASE = timedelta(minutes=2)
POLL_SECONDS = 1.0
# Daily-ish duties (a guardian's access ending at 18) run this often; each is idempotent.
HOUSEKEEPING_SECONDS = 3600.0
# Held results whose hold has ended are released within this long.
RELEASE_SECONDS = 60.0
# Scheduled campaigns get a round this often (each round keeps to the hourly rate).
CAMPAIGN_SECONDS = 5.0
# Audit rows wait about this long to be sealed into the chain.
SEAL_SECONDS = 1.0


def channels_from_settings(settings: Settings) -> dict[str, Channel]:
    sms: Channel
    if settings.sms_provider == "twilio":
        missing = [
            name
            for name, value in (
                ("PORTAL_TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
                ("PORTAL_TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
                ("PORTAL_TWILIO_FROM", settings.twilio_from),
            )
            if not value
        ]
        if missing:
            raise SystemExit(f"PORTAL_SMS_PROVIDER=twilio needs {', '.join(missing)}")
        sms = TwilioSMS(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            from_number=settings.twilio_from,
            base_url=settings.twilio_base_url,
            # Delivery receipts come back to the portal (app/handlers/outreach.py).
            status_callback=f"{settings.base_url}/sms/status",
        )
    elif settings.sms_provider == "console":
        sms = ConsoleSMS(reveal_body=settings.demo)
    else:
        raise SystemExit(f"Unknown PORTAL_SMS_PROVIDER: {settings.sms_provider}")
    email: Channel = ConsoleEmail(reveal_body=settings.demo)
    if settings.smtp_host:
        email = SMTPEmail(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.email_from,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            starttls=settings.smtp_starttls,
        )
    # RFC 8292's contact for the push services: the portal's address, or its sender email.
    subject = settings.base_url if settings.secure_cookies else f"mailto:{settings.email_from}"
    push = WebPushChannel(private_key_pem=settings.vapid_private_key, subject=subject)
    return {"sms": sms, "email": email, "push": push}


async def _housekeeping() -> None:
    try:
        # A standalone `portal worker` has not loaded the clinic (its name and time zone).
        clinic_profile_set(await clinic_profile_load())
        ended = await guardian_grants_end_at_adulthood()
        ended_own = await self_grants_outside_age_rules()
        purged = await outbox_purge(keep_days=get_settings().outbox_keep_days)
        await sms_received_purge(keep_days=get_settings().outbox_keep_days)
        made = await _slots_generate()
    except Exception as error:  # tried again next hour
        log.error("housekeeping failed: %s", type(error).__name__)
        return
    if ended:
        log.info("ended %d guardian grants at adulthood", ended)
    if ended_own:
        log.info("ended %d minors' own grants outside the age rules", ended_own)
    if purged:
        log.info("deleted %d finished outbox messages", purged)
    if made:
        log.info("made %d slots from weekly templates", made)


# When this worker last rolled up the whole year (retention's return visits keep arriving
# for a year after a month); in between, only this month and the last are rolled up.
_last_full_rollup = 0.0
FULL_ROLLUP_SECONDS = 24 * 3600.0
DASHBOARD_FIRST_DELAY_SECONDS = 60.0


async def _dashboard() -> None:
    """Every hour: remind invited patients due a follow-up (when the clinic turned that on),
    then roll the facts up into the dashboard's figures: this month and the last, and once
    a day the whole year (13 months)."""
    global _last_full_rollup
    full = time.monotonic() - _last_full_rollup >= FULL_ROLLUP_SECONDS or not _last_full_rollup
    try:
        # Months turn over at the clinic's midnight: its time zone first (a standalone worker).
        clinic_profile_set(await clinic_profile_load())
        reminded = await follow_ups_send_due()
        written = await dashboard_refresh(months=13 if full else 2)
        if full:
            _last_full_rollup = time.monotonic()
    except Exception as error:  # tried again next hour
        log.error("dashboard roll-up failed: %s", type(error).__name__)
        return
    if reminded:
        log.info("sent %d follow-up reminders", reminded)
    log.info("rolled up %d dashboard figures", written)


async def _slots_generate() -> int:
    """The coming weeks' slots from the clinicians' weekly templates (idempotent)."""
    async with write_transaction():
        return await slots_generate()


async def _release_held_results() -> None:
    """Every minute: held results whose hold has ended, visit reminders (three days and one
    day before), waitlist offers that ran out (their slots go to the next in line), bill
    notices, plans' charges, and Checkout payments left processing past their session."""
    for duty, done in (
        (results_release_due, "released %d held results"),
        (visit_reminders_send, "queued %d visit reminders"),
        (waitlist_offers_expire, "expired %d waitlist offers"),
        (bill_notices_send, "queued bill notices for %d statements"),
        (plan_instalments_run, "payment plans: %d notices and charges"),
        (checkout_payments_settle, "settled %d Checkout payments past their session"),
    ):
        try:
            count = await duty()
        except Exception as error:  # tried again next minute
            log.error("%s failed: %s", duty.__name__, type(error).__name__)
            continue
        if count:
            log.info(done, count)


async def _send_campaigns() -> None:
    """Scheduled campaigns whose time has come: one round each (app/services/outreach)."""
    try:
        sent = await campaigns_send_due()
    except Exception as error:  # tried again next round; a person is never sent to twice
        log.error("campaigns round failed: %s", type(error).__name__)
        return
    if sent:
        log.info("sent %d campaign messages", sent)


async def run_dashboard(stop: asyncio.Event) -> None:
    """The dashboard's hourly duty, beside the delivery loop: a roll-up over many facts takes
    a while, and no text or push should wait for it. It starts a minute after the worker, so
    a (re)starting server serves and delivers first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=DASHBOARD_FIRST_DELAY_SECONDS)
    while not stop.is_set():
        await _dashboard()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=HOUSEKEEPING_SECONDS)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def run_sealer(name: str, stop: asyncio.Event) -> None:
    """Seal audit rows into the chain until `stop` is set: at once while a full batch waits,
    otherwise every SEAL_SECONDS. Whichever worker holds the lease does the work."""
    try:
        while not stop.is_set():
            try:
                sealed = await audit_seal(holder=name)
            except Exception as error:  # the rows wait for the next round; /healthz tells
                log.error("audit sealing failed: %s", type(error).__name__)
                sealed = 0
            if sealed < SEAL_BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=SEAL_SECONDS)
    finally:
        with contextlib.suppress(Exception):
            await audit_seal_release(holder=name)


async def run_worker(channels: dict[str, Channel], stop: asyncio.Event) -> None:
    """Deliver until `stop` is set; wait a second between empty rounds. The audit sealer and
    the dashboard's roll-up run beside it, so neither holds delivery up, nor it them."""
    name = worker_name()
    log.info("outbox worker %s started", name)
    sealer = asyncio.create_task(run_sealer(name, stop))
    dashboard = asyncio.create_task(run_dashboard(stop))
    next_housekeeping = next_release = next_campaigns = 0.0
    while not stop.is_set():
        # Delivery first: at start-up, messages already waiting (a reminder, a sign-in code)
        # go out before the periodic duties, which on a large clinic take a while.
        try:
            claimed = await outbox_deliver(channels=channels, worker=name, lease=LEASE)
        except Exception as error:  # keep delivering; rows stay pending for the next round
            log.error("outbox round failed: %s", type(error).__name__)
            claimed = 0
        if time.monotonic() >= next_housekeeping:
            next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
            await _housekeeping()
        if time.monotonic() >= next_release:
            next_release = time.monotonic() + RELEASE_SECONDS
            await _release_held_results()
        if time.monotonic() >= next_campaigns:
            next_campaigns = time.monotonic() + CAMPAIGN_SECONDS
            await _send_campaigns()
        if claimed == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=POLL_SECONDS)
    await sealer
    dashboard.cancel()  # a roll-up under way is rolled back and done again next start
    with contextlib.suppress(asyncio.CancelledError):
        await dashboard
    log.info("outbox worker %s stopped", name)
