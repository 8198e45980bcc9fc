"""The authorization matrix (docs/security.md, Authorization): every route, checked for anonymous,
the patient, another patient, a proxy with the right scope, one with the wrong scope, a revoked
and an expired proxy, and each staff role.

MATRIX says who may use each route; `expected` turns that into the answer each persona must get.
The routes come from the app itself (demo mode on, so the demo routes are listed too), so a new
route without an entry fails the suite, and so does an entry for a route that is gone.

Each check (one route, one persona) gets a fresh world (the patient, their ids, the persona's
own account or staff user), a fresh cookie jar and a client address of its own, so one check's
side effects (a revoke, a sign-out, a rate-limit count) never change another's answer.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import re
import secrets
import string
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from app.access import SCOPE_AREAS
from app.db import write_transaction
from app.handlers.support import SESSION_COOKIE
from app.main import create_app
from app.services.bills.checkout import cancel_token
from app.services.console.roles import ROLES
from app.services.demo.clinic import PERSONAS as DEMO_PERSONAS
from app.services.demo.sign_in import DEMO_STAFF
from app.services.sessions import token_hash
from app.settings import Settings, get_settings
from app.tables import (
    AccessGrant,
    Appointment,
    Campaign,
    CampaignSend,
    CaregiverInvite,
    Clinician,
    EnrollmentInvite,
    JoinRequest,
    LabObservation,
    LedgerEntry,
    Location,
    NewsNote,
    Passkey,
    Patient,
    Payment,
    ScheduleTemplate,
    Slot,
    StaffInvite,
    StaffUser,
    WaitlistEntry,
    WaitlistOffer,
    WebSession,
)
from tests.factories import (
    appointment_type,
    grant,
    hours_from_now,
    make_account,
    make_attachment,
    make_bill,
    make_dead_text,
    make_location,
    make_patient,
    make_person,
    make_push_device,
    make_record,
    make_refill,
    make_reply_template,
    make_report,
    make_schedule,
    make_thread,
    start_session,
    unique,
    years_ago,
)
from tests.web.conftest import BASE_URL, flashed, running, staff_signed_in

# Rules ------------------------------------------------------------------------------------


class Kind(enum.Enum):
    PUBLIC = "anyone"
    PROVIDER = "the SMS provider alone, by its request signature: 403 for everyone else"
    DEMO = "anyone, demo mode only"
    ACCOUNT = "any signed-in account, with or without a record"
    PATIENT = "a signed-in account whose PatientContext opens the area"
    SELF = "the patient themself, never a proxy"
    STAFF = "staff with one of the roles"


class Owner(enum.Enum):
    """What an id the route is given belongs to: anyone else gets 404, never a hint."""

    NONE = "no id"
    ACCOUNT = "the patient's account (a passkey, a device)"
    RECORD = "the patient's record (a grant, an invitation, the record itself)"
    # An item in an area of the record (a conversation, its attachment): looked up only
    # among what the grant shows, so a grant that does not open the area gets 404 too.
    HIDDEN = "an item the grant must open the area to see"
    # A payment's way back from Stripe Checkout: only the account that started it, even
    # among those the grant lets see the record's bills.
    PAYER = "a payment the persona's own account started"


class Outcome(enum.Enum):
    OK = "allowed"
    SIGN_IN = "sent to sign in"
    FORBIDDEN = "403"
    NOT_FOUND = "404"
    UNEXPECTED = "something else"


# Default: a page, a redirect that is not to a sign-in page, or a created passkey.
ALLOWED = frozenset({200, 201, 303})

STAFF_ROLES = ("front_desk", "nurse", "clinician", "billing", "admin", "manager")
ALL_STAFF = frozenset(STAFF_ROLES)
# Campaigns and What's new: the people who run the clinic's outreach.
OUTREACH = frozenset({"manager", "admin"})
# Everyone who answers patients' messages: all but the practice manager.
CARE_STAFF = ALL_STAFF - {"manager"}
DASHBOARD = frozenset({"admin", "manager"})
MEET_PATIENTS = frozenset({"front_desk", "nurse", "clinician", "admin"})
MANAGE_GRANTS = frozenset({"front_desk", "nurse", "admin"})
FRONT_DESK_AND_ADMIN = frozenset({"front_desk", "admin"})
ADMIN = frozenset({"admin"})
REVIEW_RESULTS = frozenset({"nurse", "clinician", "admin"})
# The pool a patient's question goes to; refills and the chart are the prescriber's.
ANSWER_QUESTIONS = frozenset({"nurse", "clinician", "admin"})
PRESCRIBER = frozenset({"clinician"})
BILLING = frozenset({"billing", "admin"})


@dataclass(frozen=True)
class Rule:
    """Who may use a route, and the smallest real request that uses it.

    `params` and string values in `form` name facts of the world ("{patient}") that are
    filled in per check; `ok_statuses` lists what counts as "allowed through"."""

    kind: Kind
    area: str | None = None  # PATIENT: the record area a proxy's scope must open
    owner: Owner = Owner.NONE
    staff: frozenset[str] = frozenset()
    params: Mapping[str, str] = field(default_factory=dict)
    # A GET's query: each value names a fact, as in `params`.
    query: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] | None = None
    json: Mapping[str, Any] | None = None
    ok_statuses: frozenset[int] = ALLOWED
    demo_only: bool = False
    why: str = ""

    def needs(self) -> set[str]:
        """The world facts this route's request uses."""
        names = set(self.params.values()) | set(self.query.values())
        for value in (self.form or {}).values():
            names |= {name for _, name, _, _ in string.Formatter().parse(value) if name}
        return names


def public(**kwargs: Any) -> Rule:
    return Rule(Kind.PUBLIC, **kwargs)


def staff_only(roles: frozenset[str], **kwargs: Any) -> Rule:
    return Rule(Kind.STAFF, staff=roles, **kwargs)


# A passkey ceremony fed an empty credential fails with 400 once it is let in.
CEREMONY = ALLOWED | {400}

# A booked visit on the record, days away (so it may still be changed online).
VISIT = Rule(Kind.PATIENT, area="appointments", owner=Owner.RECORD, params={"visit_id": "visit"})
# A payment made on the record's bills: its receipt.
RECEIPT = Rule(Kind.PATIENT, area="billing", owner=Owner.RECORD, params={"payment_id": "payment"})
# The way back from Stripe Checkout (paid, or left): the payment's own account only.
CHECKOUT_BACK = Rule(
    Kind.PATIENT,
    area="billing",
    owner=Owner.PAYER,
    params={"payment_id": "checkout_payment"},
    why="a finished payment: 303 to its receipt",
)
# Guest pay: without a pass for a statement (set after a code and date of birth match),
# every guest page sends the browser back to /pay.
GUEST = Rule(Kind.PUBLIC, why="without a statement pass: 303 to /pay")
# A waitlist offer for one of the record's visits: its link's token.
OFFER = Rule(Kind.PATIENT, area="appointments", owner=Owner.RECORD, params={"token": "offer_token"})

MATRIX: dict[tuple[str, str], Rule] = {
    # Public pages and files.
    ("GET", "/"): public(why="signed in: 303 to /home"),
    ("GET", "/offline"): public(),
    ("GET", "/healthz"): public(),
    ("GET", "/manifest.webmanifest"): public(),
    ("GET", "/sw.js"): public(),
    ("GET", "/favicon.ico"): public(),
    ("POST", "/language"): public(form={"locale": "es", "next": "/offline"}),
    # Signing in and out.
    ("POST", "/sign-out"): public(why="ends whatever session there is, or none"),
    ("POST", "/sign-out/everywhere"): Rule(Kind.ACCOUNT),
    ("GET", "/sign-in/code"): public(),
    ("POST", "/sign-in/code"): public(
        form={"contact": "{contact}"}, why="the same answer whether a record exists or not"
    ),
    ("GET", "/sign-in/code/check"): public(),
    ("POST", "/sign-in/code/check"): public(
        form={"code": "000000"}, ok_statuses=ALLOWED | {400}, why="no code was asked for: 400"
    ),
    ("POST", "/sign-in/passkey/options"): public(json={}),
    ("POST", "/sign-in/passkey"): public(json={}, ok_statuses=CEREMONY),
    # Enrollment and self-enrollment.
    ("GET", "/enroll/{token}"): public(params={"token": "enroll_token"}),
    ("POST", "/enroll/{token}"): public(
        params={"token": "enroll_token"},
        form={"birth_date": "1901-01-01"},
        ok_statuses=ALLOWED | {400},
        why="a wrong date of birth: 400",
    ),
    ("GET", "/welcome"): Rule(Kind.PATIENT),
    ("GET", "/join/{code}"): public(params={"code": "location"}),
    ("POST", "/join/{code}"): public(
        params={"code": "location"},
        form={
            "given_name": "Kim",
            "family_name": "Nobody",
            "birth_date": "2001-02-03",
            "contact": "{contact}",
        },
    ),
    # The account: profile, devices, passkeys.
    ("POST", "/profile"): Rule(
        Kind.ACCOUNT,
        owner=Owner.RECORD,
        form={"patient": "{patient}", "next": "/more"},
        why="any live grant on the record may switch to it",
    ),
    ("GET", "/devices"): Rule(Kind.PATIENT, why="the page needs a context, as the tabs do"),
    ("POST", "/devices/{public_id}/sign-out"): Rule(
        Kind.ACCOUNT, owner=Owner.ACCOUNT, params={"public_id": "device"}
    ),
    ("GET", "/passkeys"): Rule(Kind.PATIENT, why="the page needs a context, as the tabs do"),
    ("POST", "/passkeys/options"): Rule(Kind.ACCOUNT, json={}),
    ("POST", "/passkeys"): Rule(Kind.ACCOUNT, json={}, ok_statuses=CEREMONY),
    ("POST", "/passkeys/{public_id}/remove"): Rule(
        Kind.ACCOUNT, owner=Owner.ACCOUNT, params={"public_id": "passkey"}, form={}
    ),
    ("POST", "/passkeys/{public_id}/rename"): Rule(
        Kind.ACCOUNT,
        owner=Owner.ACCOUNT,
        params={"public_id": "passkey"},
        form={"name": "Work laptop"},
    ),
    # The record's tabs.
    ("GET", "/home"): Rule(Kind.PATIENT, why="shows only what the scope opens"),
    ("GET", "/messages"): Rule(Kind.PATIENT, area="messages"),
    # Visits: booking, changing and cancelling for the record on screen, within its scope.
    ("GET", "/messages/new"): Rule(Kind.PATIENT, area="messages"),
    ("POST", "/messages"): Rule(
        Kind.PATIENT, area="messages", form={"topic": "question", "body": "A question."}
    ),
    ("GET", "/messages/{thread_id}"): Rule(
        Kind.PATIENT, area="messages", owner=Owner.HIDDEN, params={"thread_id": "thread"}
    ),
    ("POST", "/messages/{thread_id}"): Rule(
        Kind.PATIENT,
        area="messages",
        owner=Owner.HIDDEN,
        params={"thread_id": "thread"},
        form={"body": "One more thing."},
    ),
    ("GET", "/messages/{thread_id}/attachments/{attachment_id}"): Rule(
        Kind.PATIENT,
        area="messages",
        owner=Owner.HIDDEN,
        params={"thread_id": "thread", "attachment_id": "attachment"},
    ),
    ("GET", "/visits"): Rule(Kind.PATIENT, area="appointments"),
    ("GET", "/visits/new"): Rule(Kind.PATIENT, area="appointments"),
    ("GET", "/visits/new/{type_code}"): Rule(
        Kind.PATIENT, area="appointments", params={"type_code": "visit_type"}
    ),
    ("GET", "/visits/book/{slot_id}"): Rule(
        Kind.PATIENT, area="appointments", params={"slot_id": "slot"}
    ),
    ("POST", "/visits/book/{slot_id}"): Rule(
        Kind.PATIENT,
        area="appointments",
        params={"slot_id": "slot"},
        form={},
        why="another patient books the free slot for their own record",
    ),
    ("GET", "/visits/{visit_id}"): VISIT,
    ("GET", "/visits/{visit_id}/calendar.ics"): VISIT,
    ("GET", "/visits/{visit_id}/reschedule"): VISIT,
    ("GET", "/visits/{visit_id}/reschedule/{slot_id}"): replace(
        VISIT, params={"visit_id": "visit", "slot_id": "slot"}
    ),
    ("POST", "/visits/{visit_id}/reschedule/{slot_id}"): replace(
        VISIT, params={"visit_id": "visit", "slot_id": "slot"}, form={}
    ),
    ("GET", "/visits/{visit_id}/cancel"): VISIT,
    ("POST", "/visits/{visit_id}/cancel"): replace(VISIT, form={"reason": "other"}),
    ("POST", "/visits/{visit_id}/confirm"): replace(VISIT, form={}),
    ("POST", "/visits/{visit_id}/waitlist"): replace(VISIT, form={}),
    ("POST", "/visits/{visit_id}/waitlist/leave"): replace(VISIT, form={}),
    ("GET", "/visits/offers/{token}"): OFFER,
    ("POST", "/visits/offers/{token}"): replace(OFFER, form={}),
    ("GET", "/results"): Rule(Kind.PATIENT, area="results"),
    ("GET", "/results/{report_id}"): Rule(
        Kind.PATIENT, area="results", owner=Owner.RECORD, params={"report_id": "report"}
    ),
    ("GET", "/results/{report_id}/{test_id}"): Rule(
        Kind.PATIENT,
        area="results",
        owner=Owner.RECORD,
        params={"report_id": "report", "test_id": "lab_test"},
    ),
    ("GET", "/record"): Rule(Kind.PATIENT, area="record"),
    ("GET", "/record/immunizations"): Rule(Kind.PATIENT, area="record"),
    ("GET", "/record/summary"): Rule(Kind.PATIENT, area="record"),
    ("GET", "/record/download"): Rule(Kind.PATIENT, area="record"),
    ("GET", "/record/visits/{visit_id}"): Rule(
        Kind.PATIENT, area="record", owner=Owner.RECORD, params={"visit_id": "record_visit"}
    ),
    ("GET", "/record/documents/{document_id}"): Rule(
        Kind.PATIENT,
        area="record",
        owner=Owner.RECORD,
        params={"document_id": "record_document"},
    ),
    ("GET", "/more"): Rule(Kind.PATIENT),
    # Bills: the record's statements, paying, receipts (a bills-only caregiver included).
    ("GET", "/bills"): Rule(Kind.PATIENT, area="billing"),
    ("GET", "/bills/pay"): Rule(Kind.PATIENT, area="billing"),
    ("GET", "/bills/plan"): Rule(Kind.PATIENT, area="billing"),
    ("POST", "/bills/plan"): Rule(
        Kind.PATIENT,
        area="billing",
        form={"months": "3", "number": "4242424242424242"},
        why="with no bill on the record: 303 back to the plan page",
    ),
    ("POST", "/bills/pay"): Rule(
        Kind.PATIENT,
        area="billing",
        form={"key": "matrix-key", "amount": "full", "number": "4000000000000002"},
        why="with no bill on the record: 303 back to the pay page",
    ),
    ("GET", "/bills/checkout/{payment_id}/done"): CHECKOUT_BACK,
    # Stripe's cancel_url carries the payment's secret (without it: 404 for everyone).
    ("GET", "/bills/checkout/{payment_id}/cancel"): replace(
        CHECKOUT_BACK, query={"token": "checkout_cancel_token"}
    ),
    ("GET", "/bills/receipts/{payment_id}"): RECEIPT,
    ("POST", "/bills/receipts/{payment_id}/check"): replace(RECEIPT, form={}),
    ("POST", "/bills/receipts/{payment_id}/cancel"): replace(CHECKOUT_BACK, form={}),
    ("POST", "/bills/webhook"): public(
        ok_statuses=ALLOWED | {400}, why="signed by the processor, not a session: unsigned is 400"
    ),
    ("GET", "/pay"): public(),
    ("POST", "/pay"): public(
        # A code of its own per check: tries are also counted per code.
        form={"code": "{contact}", "birth_date": "1901-01-01"},
        ok_statuses=ALLOWED | {400},
        why="no statement with that code and date of birth: 400, whoever asks",
    ),
    ("GET", "/pay/statement"): GUEST,
    ("POST", "/pay/statement"): replace(GUEST, form={}),
    ("GET", "/pay/checkout/{payment_id}/done"): replace(
        GUEST, params={"payment_id": "checkout_payment"}
    ),
    ("GET", "/pay/checkout/{payment_id}/cancel"): replace(
        GUEST, params={"payment_id": "checkout_payment"}, query={"token": "checkout_cancel_token"}
    ),
    ("GET", "/pay/receipts/{payment_id}"): replace(GUEST, params={"payment_id": "payment"}),
    ("POST", "/pay/receipts/{payment_id}/check"): replace(
        GUEST, params={"payment_id": "payment"}, form={}
    ),
    ("POST", "/pay/receipts/{payment_id}/cancel"): replace(
        GUEST, params={"payment_id": "checkout_payment"}, form={}
    ),
    # Notifications: the account's own devices and choices.
    ("GET", "/notifications"): Rule(Kind.PATIENT, why="the page needs a context, as the tabs do"),
    ("POST", "/notifications"): Rule(Kind.ACCOUNT, form={"results.push": "on"}),
    ("POST", "/push/subscriptions"): Rule(Kind.ACCOUNT, json={}, ok_statuses=CEREMONY),
    ("POST", "/push/subscriptions/{public_id}/remove"): Rule(
        Kind.ACCOUNT, owner=Owner.ACCOUNT, params={"public_id": "push_device"}, form={}
    ),
    ("POST", "/notifications/test"): Rule(Kind.ACCOUNT, form={}),
    # Sharing: the patient manages it; a proxy never does.
    ("GET", "/sharing"): Rule(Kind.SELF),
    ("POST", "/sharing/invite"): Rule(
        Kind.SELF,
        form={
            "contact": "{contact}",
            "relationship": "friend",
            "scope": "billing",
            "end_date": "",
        },
    ),
    ("POST", "/sharing/grants/{public_id}/revoke"): Rule(
        Kind.SELF, owner=Owner.RECORD, params={"public_id": "grant"}
    ),
    ("POST", "/sharing/invites/{public_id}/cancel"): Rule(
        Kind.SELF, owner=Owner.RECORD, params={"public_id": "invite"}
    ),
    ("GET", "/access-history"): Rule(Kind.SELF),
    ("GET", "/care/{token}"): public(params={"token": "care_token"}),
    ("POST", "/care/{token}/code"): public(params={"token": "care_token"}, form={}),
    ("POST", "/care/{token}"): public(
        params={"token": "care_token"},
        form={"name": "New Helper", "code": "000000"},
        ok_statuses=ALLOWED | {400},
        why="without the code sent to the invited contact: 400, whoever asks",
    ),
    # The clinic console.
    ("GET", "/staff/sign-in"): public(),
    ("POST", "/staff/sign-in/options"): public(json={}),
    ("POST", "/staff/sign-in"): public(json={}, ok_statuses=CEREMONY),
    ("GET", "/staff/enroll/{token}"): public(params={"token": "staff_token"}),
    ("POST", "/staff/enroll/{token}/options"): public(params={"token": "staff_token"}, json={}),
    ("POST", "/staff/enroll/{token}"): public(
        params={"token": "staff_token"}, json={}, ok_statuses=CEREMONY
    ),
    ("POST", "/staff/sign-out"): public(why="ends whatever staff session there is, or none"),
    ("GET", "/staff"): staff_only(ALL_STAFF),
    ("GET", "/staff/patients/{public_id}"): staff_only(ALL_STAFF, params={"public_id": "patient"}),
    ("POST", "/staff/patients/{public_id}/invite"): staff_only(
        MEET_PATIENTS, params={"public_id": "patient"}, form={"via": "sms"}
    ),
    ("POST", "/staff/patients/{public_id}/own-contacts"): staff_only(
        MEET_PATIENTS, params={"public_id": "patient"}, form={"phone_is_own": "yes"}
    ),
    ("POST", "/staff/patients/{public_id}/guardian"): staff_only(
        MANAGE_GRANTS,
        params={"public_id": "child"},
        form={"checked": "yes", "contact": "{contact}", "relationship": "parent"},
        why="a minor's record: guardians are invited for minors only",
    ),
    ("POST", "/staff/grants/{public_id}/revoke"): staff_only(
        MANAGE_GRANTS, params={"public_id": "grant"}
    ),
    ("GET", "/staff/join-requests"): staff_only(FRONT_DESK_AND_ADMIN),
    ("POST", "/staff/join-requests/{public_id}/close"): staff_only(
        FRONT_DESK_AND_ADMIN, params={"public_id": "join_request"}, form={"outcome": "dismissed"}
    ),
    ("GET", "/staff/audit"): staff_only(ADMIN),
    ("GET", "/staff/results"): staff_only(REVIEW_RESULTS),
    ("POST", "/staff/results/{public_id}"): staff_only(
        REVIEW_RESULTS, params={"public_id": "report"}, form={"comment": "Looks fine."}
    ),
    ("GET", "/staff/posters"): staff_only(FRONT_DESK_AND_ADMIN),
    ("GET", "/staff/deliveries"): staff_only(FRONT_DESK_AND_ADMIN),
    ("POST", "/staff/deliveries/{public_id}/retry"): staff_only(
        FRONT_DESK_AND_ADMIN, params={"public_id": "dead_letter"}
    ),
    ("GET", "/staff/posters/{code}/{size}"): staff_only(
        FRONT_DESK_AND_ADMIN, params={"code": "location", "size": "paper"}
    ),
    ("GET", "/staff/scheduling"): staff_only(FRONT_DESK_AND_ADMIN),
    ("GET", "/staff/scheduling/inventory"): staff_only(ADMIN),
    ("POST", "/staff/scheduling/types/{code}"): staff_only(
        ADMIN,
        params={"code": "visit_type"},
        # The rules the factories and the demo give this type: saving them changes nothing.
        form={
            "duration_minutes": "20",
            "min_age": "0",
            "max_age": "130",
            "cancel_hours": "2",
            "established_patients": "on",
            "new_patients": "on",
            "self_bookable": "on",
            "modality": "in_person",
        },
    ),
    ("POST", "/staff/scheduling/templates"): staff_only(
        ADMIN,
        form={
            "clinician": "{clinician}",
            "location": "{clinic_location}",
            "type": "lab_visit",
            "weekday": "6",
            "start": "06:00",
            "end": "06:15",
        },
    ),
    ("POST", "/staff/scheduling/templates/{public_id}/remove"): staff_only(
        ADMIN, params={"public_id": "hours"}
    ),
    ("POST", "/staff/scheduling/blocks"): staff_only(
        ADMIN,
        form={
            "clinician": "{clinician}",
            "location": "",
            "start_day": (date.today() + timedelta(days=400)).isoformat(),
        },
    ),
    # The message queue: every role answers a pool; a question is the clinical pool's.
    ("GET", "/staff/messages"): staff_only(CARE_STAFF),
    ("GET", "/staff/messages/{thread_id}"): staff_only(
        ANSWER_QUESTIONS, params={"thread_id": "thread"}
    ),
    ("POST", "/staff/messages/{thread_id}/claim"): staff_only(
        ANSWER_QUESTIONS, params={"thread_id": "thread"}
    ),
    ("POST", "/staff/messages/{thread_id}/assign"): staff_only(
        ANSWER_QUESTIONS, params={"thread_id": "thread"}, form={"to": ""}
    ),
    ("POST", "/staff/messages/{thread_id}/reply"): staff_only(
        ANSWER_QUESTIONS, params={"thread_id": "thread"}, form={"body": "Rest and fluids."}
    ),
    ("POST", "/staff/messages/{thread_id}/note"): staff_only(
        ANSWER_QUESTIONS, params={"thread_id": "thread"}, form={"note": "Called back."}
    ),
    ("POST", "/staff/messages/{thread_id}/close"): staff_only(
        ANSWER_QUESTIONS, params={"thread_id": "thread"}
    ),
    ("POST", "/staff/messages/{thread_id}/reopen"): staff_only(
        ANSWER_QUESTIONS, params={"thread_id": "thread"}
    ),
    ("POST", "/staff/messages/{thread_id}/documented"): staff_only(
        PRESCRIBER, params={"thread_id": "thread"}, form={"note": "Advised rest."}
    ),
    ("POST", "/staff/messages/{thread_id}/refills/{refill_id}"): staff_only(
        PRESCRIBER,
        params={"thread_id": "refill_thread", "refill_id": "refill"},
        form={"decision": "approve", "note": "Sent to your pharmacy."},
    ),
    ("GET", "/staff/messages/{thread_id}/attachments/{attachment_id}"): staff_only(
        ANSWER_QUESTIONS, params={"thread_id": "thread", "attachment_id": "attachment"}
    ),
    ("GET", "/staff/messages/templates"): staff_only(ADMIN),
    ("POST", "/staff/messages/templates"): staff_only(
        ADMIN, form={"title": "Thanks", "body": "Hi {{first_name}}.", "topic": ""}
    ),
    ("POST", "/staff/messages/templates/{template_id}"): staff_only(
        ADMIN,
        params={"template_id": "template"},
        form={"title": "Thanks", "body": "Hello {{first_name}}.", "topic": "question"},
    ),
    ("POST", "/staff/messages/templates/{template_id}/remove"): staff_only(
        ADMIN, params={"template_id": "template"}
    ),
    # Billing: find an account, its ledger, adjustments and refunds.
    ("GET", "/staff/billing"): staff_only(BILLING),
    ("GET", "/staff/billing/accounts/{public_id}"): staff_only(
        BILLING, params={"public_id": "billing_account"}
    ),
    ("POST", "/staff/billing/accounts/{public_id}/adjustments"): staff_only(
        BILLING,
        params={"public_id": "billing_account"},
        form={"amount": "1.00", "reason": "courtesy", "note": "", "key": "matrix-" * 5},
    ),
    ("POST", "/staff/billing/payments/{public_id}/refund"): staff_only(
        BILLING, params={"public_id": "payment"}, form={"amount": "1.00"}
    ),
    ("POST", "/staff/billing/payments/{public_id}/review"): staff_only(
        BILLING,
        params={"public_id": "payment"},
        form={"action": "post"},
        why="let through, a paid payment is not in review: 303 with a notice",
    ),
    # The dashboard: the month's figures, the follow-up list, the CSV.
    ("GET", "/staff/dashboard"): staff_only(DASHBOARD),
    ("GET", "/staff/dashboard/export"): staff_only(DASHBOARD),
    ("POST", "/staff/dashboard/refresh"): staff_only(DASHBOARD),
    ("GET", "/staff/dashboard/follow-up"): staff_only(DASHBOARD),
    ("POST", "/staff/dashboard/follow-up"): staff_only(DASHBOARD, form={"patient": "{patient}"}),
    ("POST", "/staff/dashboard/follow-up/{public_id}/opt-out"): staff_only(
        DASHBOARD, params={"public_id": "patient"}
    ),
    # The survey after a task, and "installed to the home screen", for the dashboard.
    ("POST", "/survey"): Rule(Kind.ACCOUNT, form={"task": "booking", "skip": "1"}),
    ("POST", "/installed"): Rule(
        Kind.ACCOUNT, form={"how": "standalone"}, ok_statuses=ALLOWED | {204}
    ),
    ("GET", "/staff/outbox"): staff_only(
        FRONT_DESK_AND_ADMIN, demo_only=True, why="its messages carry links and codes"
    ),
    # Outreach: the SMS provider's webhooks, campaign links, the console's campaigns.
    ("POST", "/sms"): Rule(Kind.PROVIDER, form={"From": "+15550001111", "Body": "STOP"}),
    ("POST", "/sms/status"): Rule(
        Kind.PROVIDER, form={"MessageSid": "SM0", "MessageStatus": "delivered"}
    ),
    ("GET", "/go/{token}"): public(params={"token": "campaign_token"}),
    ("GET", "/staff/campaigns"): staff_only(OUTREACH),
    ("POST", "/staff/campaigns"): staff_only(
        OUTREACH,
        form={"name": "Book online", "segment": "enrolled_never_booked", "template": "book_online"},
    ),
    ("GET", "/staff/campaigns/{campaign_id}"): staff_only(
        OUTREACH, params={"campaign_id": "campaign"}
    ),
    ("POST", "/staff/campaigns/{campaign_id}/schedule"): staff_only(
        OUTREACH,
        params={"campaign_id": "campaign"},
        form={"day": "2099-01-05", "time": "09:00", "per_hour": "10"},
    ),
    ("GET", "/staff/campaigns/news"): staff_only(OUTREACH),
    ("POST", "/staff/campaigns/news"): staff_only(
        OUTREACH, form={"title": "Evening visits", "body": "Tuesdays until 7 pm."}
    ),
    ("POST", "/staff/campaigns/news/{note_id}/withdraw"): staff_only(
        OUTREACH, params={"note_id": "news_note"}
    ),
    ("GET", "/staff/texts"): staff_only(
        frozenset({"front_desk", "manager", "admin"}), demo_only=True, why="stands in for a phone"
    ),
    ("POST", "/staff/texts"): staff_only(
        frozenset({"front_desk", "manager", "admin"}),
        demo_only=True,
        form={"number": "+15550001111", "body": "HELP"},
    ),
    # Demo sign-in: anyone may be a demo persona, by design (the demo holds no real data).
    ("GET", "/demo"): Rule(Kind.DEMO, demo_only=True),
    ("GET", "/demo/sign-in/{slug}"): Rule(Kind.DEMO, demo_only=True, params={"slug": "persona"}),
    ("POST", "/demo/sign-in/{slug}"): Rule(
        Kind.DEMO,
        demo_only=True,
        params={"slug": "persona"},
        why="the world makes the persona's record when the demo clinic is not seeded",
    ),
    ("GET", "/demo/staff/{slug}"): Rule(Kind.DEMO, demo_only=True, params={"slug": "demo_staff"}),
    ("POST", "/demo/staff/{slug}"): Rule(Kind.DEMO, demo_only=True, params={"slug": "demo_staff"}),
}

# Personas ---------------------------------------------------------------------------------

PROXIES = ("proxy_right", "proxy_wrong", "proxy_revoked", "proxy_expired")
PERSONAS = ("anonymous", "patient", "other_patient", *PROXIES, *STAFF_ROLES)
# Accounts that reach the patient's record through a live grant.
LIVE_ON_RECORD = frozenset({"patient", "proxy_right", "proxy_wrong"})


def proxy_scope(rule: Rule, persona: str) -> str:
    """A scope that opens the route's area (proxy_right) or does not (proxy_wrong)."""
    if persona == "proxy_wrong":
        return "messages" if rule.area == "billing" else "billing"
    return {"appointments": "appointments_billing", "messages": "messages"}.get(
        rule.area or "", "full"
    )


def expected(rule: Rule, persona: str) -> Outcome:
    if rule.kind is Kind.PROVIDER:
        return Outcome.FORBIDDEN  # no persona holds the provider's auth token
    if rule.kind in (Kind.PUBLIC, Kind.DEMO):
        return Outcome.OK
    if rule.kind is Kind.STAFF:
        if persona not in STAFF_ROLES:
            return Outcome.SIGN_IN  # a patient's session means nothing in the console
        return Outcome.OK if persona in rule.staff else Outcome.FORBIDDEN
    if persona == "anonymous" or persona in STAFF_ROLES:
        return Outcome.SIGN_IN  # the staff cookie is never sent outside /staff
    if rule.kind is Kind.ACCOUNT:
        if rule.owner is Owner.ACCOUNT:
            return Outcome.OK if persona == "patient" else Outcome.NOT_FOUND
        if rule.owner is Owner.RECORD:
            return Outcome.OK if persona in LIVE_ON_RECORD else Outcome.NOT_FOUND
        return Outcome.OK
    # PATIENT and SELF need a PatientContext: no live grant at all is 403.
    if persona in ("proxy_revoked", "proxy_expired"):
        return Outcome.FORBIDDEN
    if persona == "other_patient":
        # Their own record: the patient's ids are looked up within it.
        return Outcome.NOT_FOUND if rule.owner is not Owner.NONE else Outcome.OK
    if persona == "patient":
        return Outcome.OK
    if rule.kind is Kind.SELF:
        return Outcome.FORBIDDEN
    if rule.owner is Owner.HIDDEN and persona == "proxy_wrong":
        return Outcome.NOT_FOUND
    if rule.owner is Owner.PAYER and persona == "proxy_right":
        return Outcome.NOT_FOUND
    return Outcome.OK if persona == "proxy_right" or rule.area is None else Outcome.FORBIDDEN


# The world --------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class World:
    """The patient (an adult with a phone on file) and the facts a route's request names."""

    patient: Patient
    account_id: int
    facts: dict[str, str] = field(default_factory=dict)


async def _patient_world() -> World:
    person = await make_person("Ana")
    phone = f"+1555017{person.patient.id % 10000:04d}"
    await Patient.update({Patient.phone: phone}).where(Patient.id == person.patient.id)
    return World(
        patient=person.patient,
        account_id=person.account.id,
        # Per-contact limits on codes and invitations: every check writes to a new address.
        facts={"patient": person.patient.public_id, "contact": f"{unique('to')}@mail.test"},
    )


async def _device(world: World) -> str:
    """Another device the patient is signed in on."""
    token = await start_session(world.account_id, world.patient.id)
    row = await WebSession.select(WebSession.public_id).where(
        WebSession.token_hash == token_hash(token)
    )
    return str(row[0]["public_id"])


async def _passkey(world: World) -> str:
    passkey = Passkey(
        account=world.account_id,
        credential_id=secrets.token_urlsafe(32),
        public_key="test-key",
        name="Phone",
    )
    await Passkey.insert(passkey)
    return str(passkey.public_id)


async def _grant(world: World) -> str:
    """A caregiver's live grant on the patient's record, given by the patient."""
    caregiver = await make_account("Cara Giver")
    row = await grant(
        caregiver, world.patient, kind="proxy", scope="billing", relationship="friend"
    )
    await AccessGrant.update({AccessGrant.granted_by_account: world.account_id}).where(
        AccessGrant.id == row.id
    )
    return str(row.public_id)


async def _care_invite(world: World) -> str:
    """A pending caregiver invitation on the record: its public id, and its link's token."""
    token = secrets.token_urlsafe(24)
    invite = CaregiverInvite(
        patient=world.patient.id,
        invited_by_account=world.account_id,
        channel="email",
        contact=f"{unique('care')}@mail.test",
        relationship="friend",
        scope="billing",
        token_hash=_hash(token),
        expires_at=datetime.now(UTC) + timedelta(days=7),
    )
    await CaregiverInvite.insert(invite)
    world.facts["care_token"] = token
    return str(invite.public_id)


async def _care_token(world: World) -> str:
    world.facts["invite"] = await _care_invite(world)
    return world.facts["care_token"]


async def _child(_: World) -> str:
    """A minor's record: staff invite a parent or guardian for minors only."""
    return str((await make_patient(given="Kid", birth=years_ago(8))).public_id)


async def _join_request(_: World) -> str:
    row = JoinRequest(
        given_name="Jo",
        family_name=unique("Walkin"),
        birth_date=date(1999, 9, 9),
        contact=f"{unique('jo')}@mail.test",
    )
    await JoinRequest.insert(row)
    return str(row.public_id)


async def _location_code(_: World) -> str:
    return (await make_location()).code


async def _paper(_: World) -> str:
    return "letter"


async def _enroll_token(world: World) -> str:
    token = secrets.token_urlsafe(24)
    await EnrollmentInvite.insert(
        EnrollmentInvite(
            patient=world.patient.id,
            token_hash=_hash(token),
            via="sms",
            expires_at=datetime.now(UTC) + timedelta(days=3),
        )
    )
    return token


async def _campaign(_: World) -> str:
    """A draft campaign (scheduling it is what the route does)."""
    campaign = Campaign(name="Matrix", segment="yearly_due", template="yearly_checkup")
    await Campaign.insert(campaign)
    return str(campaign.public_id)


async def _campaign_token(world: World) -> str:
    """The link of a campaign's message to the patient."""
    campaign = Campaign(name="Matrix", segment="yearly_due", template="yearly_checkup")
    await Campaign.insert(campaign)
    token = secrets.token_urlsafe(16)
    await CampaignSend.insert(
        CampaignSend(
            campaign=campaign.id,
            patient=world.patient.id,
            once_key=f"{campaign.id}:{world.patient.id}",
            channel="sms",
            token=token,
        )
    )
    return token


async def _news_note(_: World) -> str:
    note = NewsNote(title="New hours", body="Open Saturdays.")
    await NewsNote.insert(note)
    return str(note.public_id)


async def _staff_token(_: World) -> str:
    """An open sign-up link for a new staff member."""
    staff = StaffUser(
        given_name="New",
        family_name=unique("Hire"),
        email=f"{unique('n')}@clinic.test",
        role="nurse",
    )
    await StaffUser.insert(staff)
    token = secrets.token_urlsafe(24)
    await StaffInvite.insert(
        StaffInvite(
            staff=staff.id,
            token_hash=_hash(token),
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
    )
    return token


async def _demo_persona(_: World) -> str:
    """The first demo persona, with the record and account demo sign-in looks for (the demo
    clinic is not seeded in unit tests, or is seeded by another test: either way it exists)."""
    persona = DEMO_PERSONAS[0]
    signs_in = await AccessGrant.exists().where(
        AccessGrant.patient.mrn == persona.mrn, AccessGrant.kind == "self"
    )
    if not signs_in:
        patient = await Patient.objects().where(Patient.mrn == persona.mrn).first()
        if patient is None:
            patient = await make_patient(given="Demo")
            await Patient.update({Patient.mrn: persona.mrn}).where(Patient.id == patient.id)
        await grant(await make_account("Demo Person"), patient)
    return persona.slug


async def _demo_staff(_: World) -> str:
    slug, (email, _summary) = next(iter(DEMO_STAFF.items()))
    if not await StaffUser.exists().where(StaffUser.email == email):
        await StaffUser.insert(
            StaffUser(given_name="Demo", family_name="Desk", email=email, role="front_desk")
        )
    return slug


async def _report(world: World) -> str:
    """A released report with one test on the patient's record."""
    report = await make_report(world.patient)
    test = await LabObservation.select(LabObservation.public_id).where(
        LabObservation.report == report.id
    )
    world.facts["lab_test"] = str(test[0]["public_id"])
    return str(report.public_id)


async def _record_items(world: World) -> str:
    """A visit summary with its PDF (and one of each other kind) on the patient's record."""
    items = await make_record(world.patient)
    world.facts["record_document"] = items.document
    return items.visit


async def _record_document(world: World) -> str:
    if "record_visit" not in world.facts:
        world.facts["record_visit"] = await _record_items(world)
    return world.facts["record_document"]


async def _lab_test(world: World) -> str:
    if "report" not in world.facts:
        world.facts["report"] = await _report(world)
    return world.facts["lab_test"]


async def _push_device(world: World) -> str:
    """A device of the patient's account that gets pushes."""
    return str((await make_push_device(world.account_id)).public_id)


async def _dead_letter(_: World) -> str:
    return str((await make_dead_text(recipient="+15550120000")).public_id)


async def _schedule(world: World) -> None:
    """Free times for a sick visit (days away), a visit booked in one, and its clinician."""
    if "slot" in world.facts:
        return
    schedule = await make_schedule(hours_from_now(70, 71, 72))
    slot_ids = await Slot.select(Slot.id, Slot.public_id).where(
        Slot.public_id.is_in(schedule.slots)
    )
    by_public = {row["public_id"]: row["id"] for row in slot_ids}
    visit = Appointment(
        patient=world.patient.id,
        clinician=schedule.clinician_id,
        location=schedule.location_id,
        slot=by_public[schedule.slots[2]],
        starts_at=datetime.now(UTC) + timedelta(hours=72),
        ends_at=datetime.now(UTC) + timedelta(hours=72, minutes=20),
        visit_type="sick_visit",
        channel="portal",
    )
    await Appointment.insert(visit)
    entry = WaitlistEntry(appointment=visit.id, patient=world.patient.id)
    await WaitlistEntry.insert(entry)
    token = secrets.token_urlsafe(24)
    await WaitlistOffer.insert(
        WaitlistOffer(
            entry=entry.id,
            slot=by_public[schedule.slots[1]],
            token_hash=_hash(token),
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
    )
    clinician = await Clinician.select(Clinician.public_id).where(
        Clinician.id == schedule.clinician_id
    )
    location = await Location.select(Location.public_id).where(Location.id == schedule.location_id)
    world.facts.update(
        slot=schedule.slots[0],
        visit=str(visit.public_id),
        offer_token=token,
        clinician=str(clinician[0]["public_id"]),
        clinic_location=str(location[0]["public_id"]),
    )


def _scheduled(name: str) -> Callable[[World], Awaitable[str]]:
    async def fact(world: World) -> str:
        await _schedule(world)
        return world.facts[name]

    return fact


async def _visit_type(_: World) -> str:
    await appointment_type("sick_visit")
    await appointment_type("lab_visit")
    return "sick_visit"


async def _hours(world: World) -> str:
    """A clinician's weekly hours (a lab visit early on Sundays)."""
    await _schedule(world)
    clinician = await Clinician.select(Clinician.id, Clinician.location).where(
        Clinician.public_id == world.facts["clinician"]
    )
    row = ScheduleTemplate(
        clinician=clinician[0]["id"],
        location=clinician[0]["location"],
        appointment_type=await appointment_type("lab_visit"),
        weekday=6,
        start_minute=6 * 60,
        end_minute=6 * 60 + 15,
    )
    await ScheduleTemplate.insert(row)
    return str(row.public_id)


async def _thread(world: World) -> str:
    """A question the patient sent, waiting in the clinical pool."""
    return str((await make_thread(world.patient)).public_id)


async def _attachment(world: World) -> str:
    """A PDF sent with the patient's question (stored as a file, as sending stores it)."""
    if "thread" not in world.facts:
        world.facts["thread"] = await _thread(world)
    return str((await make_attachment(world.facts["thread"])).public_id)


async def _refill_thread(world: World) -> str:
    thread, refill = await make_refill(world.patient)
    world.facts["refill"] = str(refill.public_id)
    return str(thread.public_id)


async def _refill(world: World) -> str:
    if "refill_thread" not in world.facts:
        world.facts["refill_thread"] = await _refill_thread(world)
    return world.facts["refill"]


async def _billing_account(world: World) -> str:
    """A bill on the patient's record (the patient pays for themself)."""
    bill = await make_bill(world.patient)
    world.facts["billing_account_id"] = str(bill.account.id)
    return str(bill.account.public_id)


async def _payment(world: World) -> str:
    """A payment that went through on the patient's bill."""
    if "billing_account" not in world.facts:
        world.facts["billing_account"] = await _billing_account(world)
    account_id = int(world.facts["billing_account_id"])
    payment = Payment(
        account=account_id,
        idempotency_key=unique("matrix-pay-"),
        amount_cents=2_000,
        status="succeeded",
        processor_ref=unique("demo_matrix_"),
    )
    await Payment.insert(payment)
    await LedgerEntry.insert(
        LedgerEntry(account=account_id, kind="payment", amount_cents=2_000, payment=payment.id)
    )
    return str(payment.public_id)


async def _checkout_cancel_token(world: World) -> str:
    """The secret Stripe's cancel_url carries for the Checkout payment."""
    if "checkout_payment" not in world.facts:
        world.facts["checkout_payment"] = await _checkout_payment(world)
    return cancel_token(world.facts["checkout_payment"])


async def _checkout_payment(world: World) -> str:
    """A payment the patient's own account made with a new card on Stripe Checkout, already
    finished (so its way back asks Stripe nothing)."""
    if "billing_account" not in world.facts:
        world.facts["billing_account"] = await _billing_account(world)
    account_id = int(world.facts["billing_account_id"])
    payment = Payment(
        account=account_id,
        idempotency_key=unique("matrix-checkout-"),
        amount_cents=2_000,
        status="succeeded",
        processor="stripe",
        processor_ref=unique("pi_matrix_"),
        checkout_session=unique("cs_matrix_"),
        paid_by_account=world.account_id,
    )
    await Payment.insert(payment)
    await LedgerEntry.insert(
        LedgerEntry(account=account_id, kind="payment", amount_cents=2_000, payment=payment.id)
    )
    return str(payment.public_id)


async def _template(_: World) -> str:
    return str((await make_reply_template()).public_id)


FACTS: dict[str, Callable[[World], Awaitable[str]]] = {
    "slot": _scheduled("slot"),
    "visit": _scheduled("visit"),
    "offer_token": _scheduled("offer_token"),
    "clinician": _scheduled("clinician"),
    "clinic_location": _scheduled("clinic_location"),
    "visit_type": _visit_type,
    "hours": _hours,
    "thread": _thread,
    "attachment": _attachment,
    "refill_thread": _refill_thread,
    "refill": _refill,
    "template": _template,
    "billing_account": _billing_account,
    "payment": _payment,
    "checkout_payment": _checkout_payment,
    "checkout_cancel_token": _checkout_cancel_token,
    "dead_letter": _dead_letter,
    "push_device": _push_device,
    "report": _report,
    "lab_test": _lab_test,
    "record_visit": _record_items,
    "record_document": _record_document,
    "device": _device,
    "passkey": _passkey,
    "grant": _grant,
    "invite": _care_invite,
    "care_token": _care_token,
    "child": _child,
    "join_request": _join_request,
    "location": _location_code,
    "paper": _paper,
    "enroll_token": _enroll_token,
    "staff_token": _staff_token,
    "campaign": _campaign,
    "campaign_token": _campaign_token,
    "news_note": _news_note,
    "persona": _demo_persona,
    "demo_staff": _demo_staff,
}


# Facts every world has; FACTS builds the others when a route names them.
BASE_FACTS = frozenset({"patient", "contact"})


async def world_for(rule: Rule) -> World:
    world = await _patient_world()
    for name in sorted(rule.needs()):
        if name not in world.facts:
            world.facts[name] = await FACTS[name](world)
    return world


async def sign_in_as(client: httpx.AsyncClient, persona: str, rule: Rule, world: World) -> None:
    """Sign the client in as the persona (anonymous: nothing)."""
    if persona == "anonymous":
        return
    if persona in STAFF_ROLES:
        await staff_signed_in(client, role=persona)
        return
    if persona == "patient":
        token = await start_session(world.account_id, world.patient.id)
    elif persona == "other_patient":
        other = await make_person("Otto")
        token = await start_session(other.account.id, other.patient.id)
    else:
        account = await make_account("Pat Proxy")
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        await grant(
            account,
            world.patient,
            kind="proxy",
            scope=proxy_scope(rule, persona),
            relationship="spouse",
            revoked_at=an_hour_ago if persona == "proxy_revoked" else None,
            expires_at=an_hour_ago if persona == "proxy_expired" else None,
        )
        token = await start_session(account.id, world.patient.id)
    client.cookies.set(SESSION_COOKIE, token)


# Requests and answers ---------------------------------------------------------------------

CSRF_COOKIE = "portal_csrf"
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass(frozen=True)
class Csrf:
    """One CSRF cookie and its token, handed to every client of a route's checks."""

    cookie: str
    token: str

    @classmethod
    async def from_page(cls, client: httpx.AsyncClient) -> Csrf:
        page = await client.get("/offline")
        match = _CSRF_META.search(page.text)
        assert match, "no csrf-token meta tag on /offline"
        cookie = client.cookies.get(CSRF_COOKIE)
        assert cookie, "no CSRF cookie was set"
        return cls(cookie, match.group(1))


async def send(
    client: httpx.AsyncClient,
    method: str,
    template: str,
    rule: Rule,
    world: World,
    csrf: Csrf,
) -> httpx.Response:
    path = template.format(**{name: world.facts[fact] for name, fact in rule.params.items()})
    if method == "GET":
        query = {name: world.facts[fact] for name, fact in rule.query.items()}
        return await client.get(path, params=query, follow_redirects=False)
    client.cookies.set(CSRF_COOKIE, csrf.cookie)
    headers = {"X-CSRFToken": csrf.token}
    if rule.json is not None:
        return await client.post(
            path, json=dict(rule.json), headers=headers, follow_redirects=False
        )
    form = {key: value.format(**world.facts) for key, value in (rule.form or {}).items()}
    return await client.post(
        path, data={**form, "_csrf_token": csrf.token}, headers=headers, follow_redirects=False
    )


def sign_in_page(template: str) -> str:
    return "/staff/sign-in" if template.startswith("/staff") else "/"


def outcome_of(response: httpx.Response, template: str, rule: Rule) -> Outcome:
    location = response.headers.get("location", "")
    start = sign_in_page(template)
    # Being sent to sign in says nothing more; a sign-out lands on the same page but leaves a
    # notice ("You are signed out.") for it.
    bounced = location == start or location.startswith(f"{start}?next=")
    if response.is_redirect and bounced and flashed(response) is None:
        return Outcome.SIGN_IN
    if response.status_code in rule.ok_statuses:
        return Outcome.OK
    if response.status_code == 403:
        return Outcome.FORBIDDEN
    if response.status_code == 404:
        return Outcome.NOT_FOUND
    return Outcome.UNEXPECTED


_addresses = itertools.count(1)


def new_client(app: Litestar) -> httpx.AsyncClient:
    """No cookies, and an address of its own: the per-address limits on codes and joins
    (some counted in the database) never see one check's requests in another's count."""
    n = next(_addresses)
    transport = httpx.ASGITransport(
        app=app, client=(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 50000)
    )
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


# The tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def demo_app() -> AsyncIterator[Litestar]:
    """One app for every route's checks (starting one costs more than a route's checks)."""
    async with running(replace(get_settings(), demo=True)) as app:
        yield app


@pytest.fixture(scope="module")
async def csrf(demo_app: Litestar) -> Csrf:
    async with new_client(demo_app) as client:
        return await Csrf.from_page(client)


def http_routes(app: Litestar) -> set[tuple[str, str]]:
    """(method, path) of every route the app answers, static files and HEAD/OPTIONS aside."""
    return {
        (method, route.path_format)
        for route in app.routes
        if isinstance(route, HTTPRoute) and not route.path_format.startswith("/static/")
        for method in route.methods - {"HEAD", "OPTIONS"}
    }


def _listed(routes: set[tuple[str, str]]) -> str:
    return "".join(f"\n  {method} {path}" for method, path in sorted(routes)) or " none"


def test_every_route_is_in_the_matrix(settings: Settings) -> None:
    routes = http_routes(create_app(replace(settings, demo=True)))
    missing, stale = routes - MATRIX.keys(), MATRIX.keys() - routes
    assert (missing, stale) == (set(), set()), (
        f"Routes without a matrix entry (add one to MATRIX):{_listed(missing)}\n"
        f"Matrix entries for routes that no longer exist:{_listed(stale)}"
    )


def test_demo_routes_exist_only_in_demo_mode(settings: Settings) -> None:
    on = http_routes(create_app(replace(settings, demo=True)))
    off = http_routes(create_app(replace(settings, demo=False)))
    assert on - off == {route for route, rule in MATRIX.items() if rule.demo_only}


def test_the_personas_are_what_they_claim_to_be() -> None:
    """Every staff role has its persona, and each proxy's scope really does (or does not)
    open the area of the routes it is checked on."""
    assert set(STAFF_ROLES) == set(ROLES)
    for rule in MATRIX.values():
        if rule.kind is Kind.PATIENT and rule.area is not None:
            assert rule.area in SCOPE_AREAS[proxy_scope(rule, "proxy_right")]
            assert rule.area not in SCOPE_AREAS[proxy_scope(rule, "proxy_wrong")]


def test_the_matrix_rules_are_consistent() -> None:
    for (method, path), rule in MATRIX.items():
        assert set(re.findall(r"{(\w+)}", path)) == set(rule.params), (method, path)
        assert rule.needs() <= FACTS.keys() | BASE_FACTS, (method, path)
        assert (rule.kind is Kind.STAFF) == bool(rule.staff), (method, path)
        assert rule.staff <= ALL_STAFF, (method, path)
        assert rule.kind is Kind.PATIENT or rule.area is None, (method, path)
        assert not {401, 403, 404, 500} & rule.ok_statuses, (method, path)
        assert method == "POST" or (rule.form is None and rule.json is None), (method, path)


async def test_the_checks_csrf_token_is_what_lets_their_posts_through(
    demo_app: Litestar, csrf: Csrf
) -> None:
    """So a 403 the matrix expects comes from authorization, never from a missing token."""
    route = ("POST", "/language")
    world = await world_for(MATRIX[route])
    async with new_client(demo_app) as client:
        client.cookies.set(CSRF_COOKIE, csrf.cookie)
        refused = await client.post("/language", data={"locale": "es"}, follow_redirects=False)
        assert refused.status_code == 403
        accepted = await send(client, *route, MATRIX[route], world, csrf)
        assert accepted.status_code == 303


def _route_id(route: tuple[str, str]) -> str:
    return f"{route[0]} {route[1]}"


@pytest.mark.parametrize("route", sorted(MATRIX), ids=_route_id)
async def test_each_persona_gets_the_answer_the_matrix_gives(
    route: tuple[str, str], demo_app: Litestar, csrf: Csrf
) -> None:
    method, template = route
    rule = MATRIX[route]
    wrong: list[str] = []
    for persona in PERSONAS:
        async with new_client(demo_app) as client:
            async with write_transaction():  # one commit for the whole set-up
                world = await world_for(rule)
                await sign_in_as(client, persona, rule, world)
            response = await send(client, method, template, rule, world, csrf)
        want, got = expected(rule, persona), outcome_of(response, template, rule)
        if want is not got:
            location = response.headers.get("location", "")
            wrong.append(
                f"  {persona}: expected {want.name}, got {response.status_code}"
                f"{' ' + location if location else ''} ({got.name})"
            )
    assert not wrong, f"{method} {template} ({rule.kind.value}):\n" + "\n".join(wrong)
