"""Reaching patients beyond the portal: two-way texts and the clinic's campaigns.

A number that texted STOP is kept in `sms_opt_out` until it texts START: the outbox sends it
only texts the person asked for (app/services/outbox.py). A campaign's send to a patient is a
row made once, by a unique key, in the same transaction as its outbox message, so a worker
that dies mid-campaign never texts anyone twice. A send's link token is random and says
nothing about the person: `/go/<token>` counts the click and leads to the campaign's screen.
"""

from piccolo.columns import ForeignKey, Integer, OnDelete, Serial, Timestamptz, Varchar
from piccolo.table import Table

from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Account, Patient, StaffUser


class SmsOptOut(Table, tablename="sms_opt_out"):
    """A phone number that texted STOP (or PARAR, ALTO, ...): no campaign or reminder text
    goes to it until it texts START (or COMENZAR)."""

    id: Serial
    number = Varchar(length=40, unique=True)
    keyword = Varchar(length=20, default="")
    opted_out_at = created_at_column()


class SmsReceived(Table, tablename="sms_received"):
    """A text taken from the provider, by the provider's id for it: a webhook the provider
    retries (after a timeout) is acted on once. Nothing else of the text is kept here."""

    id: Serial
    provider_id = Varchar(length=64, unique=True)
    received_at = created_at_column()


class Campaign(Table):
    """A message to a segment of patients, sent by the worker from `send_at` on."""

    id: Serial
    public_id = public_id_column()
    name = Varchar(length=120)
    # enrolled_never_booked | invited_never_signed_in | push_not_enabled | yearly_due
    segment = Varchar(length=40)
    # A template in app/notices/outreach.py: book_online | finish_enrollment | turn_on_push |
    # yearly_checkup
    template = Varchar(length=40)
    # draft | scheduled | done
    status = Varchar(length=10, default="draft")
    send_at = Timestamptz(null=True, default=None)
    # At most this many people are sent to in any hour.
    per_hour = Integer(default=200)
    created_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    created_at = created_at_column()
    finished_at = Timestamptz(null=True, default=None)


class CampaignSend(Table, tablename="campaign_send"):
    """One campaign's message to one patient, made once: `once_key` is "<campaign>:<patient>"
    and unique, and it is written with the outbox row in one transaction."""

    id: Serial
    campaign = ForeignKey(references=Campaign, on_delete=OnDelete.cascade, index=True)
    patient = ForeignKey(references=Patient, on_delete=OnDelete.cascade, index=True)
    account = ForeignKey(references=Account, null=True, default=None, on_delete=OnDelete.set_null)
    once_key = Varchar(length=60, unique=True)
    # The channel it went by; "" when it was not sent (see `skipped`).
    channel = Varchar(length=10, default="")
    # opted_out | no_contact | monthly_cap: why nothing went.
    skipped = Varchar(length=20, default="")
    outbox_key = Varchar(length=64, null=True, default=None, index=True)
    # The random token of its link (/go/<token>).
    token = Varchar(length=43, unique=True)
    created_at = created_at_column()
    clicked_at = Timestamptz(null=True, default=None)


class NewsNote(Table, tablename="news_note"):
    """ "What's new": the clinic tells patients what it changed, often after their feedback.
    Written by staff, shown on home while published, in the reader's language when there is
    a translation."""

    id: Serial
    public_id = public_id_column()
    title = Varchar(length=120)
    body = Varchar(length=600)
    title_es = Varchar(length=120, default="")
    body_es = Varchar(length=600, default="")
    created_by_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    created_at = created_at_column()
    withdrawn_at = Timestamptz(null=True, default=None)
