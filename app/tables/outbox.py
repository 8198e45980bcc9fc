"""Outgoing pushes, texts and emails, written in the same transaction as what caused them."""

from piccolo.columns import ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table

from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Account


class OutboxMessage(Table, tablename="outbox"):
    id: Serial
    public_id = public_id_column()
    channel = Varchar(length=10)  # push | sms | email
    recipient = Varchar(length=200)
    subject = Varchar(length=200, default="")
    # Never health information: "You have a new message. Open the portal to read it." It may
    # hold a sign-in code or a single-use link, so it is emptied once the message is sent or
    # given up (scrubbed_at); the length and a keyed hash stay to show what went.
    body = Text()
    body_length = Integer(default=0)
    body_hmac = Varchar(length=64, default="")
    scrubbed_at = Timestamptz(null=True, default=None)
    # What sort of message this is (e.g. "code", "invite", "notice.results"): outlives the text.
    kind = Varchar(length=40, default="")
    # A notice's pushes share a key; when the last of them cannot be delivered, the notice
    # goes to the account by text or email instead (app.notices.delivery).
    notice = Varchar(length=32, null=True, default=None)
    account = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.cascade, index=True
    )
    # The same on every attempt, so a provider that deduplicates can (email Message-ID).
    idempotency_key = Varchar(length=64, unique=True)
    status = Varchar(length=10, default="pending")  # pending | sent | dead
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(index=True)
    # A worker holds a row while it delivers; a worker that dies lets the lease run out.
    lease_owner = Varchar(length=64, null=True, default=None)
    lease_until = Timestamptz(null=True, default=None)
    last_error = Varchar(length=200, default="")
    provider_id = Varchar(length=100, null=True, default=None)
    # What the provider last reported (a status callback): queued | sent | delivered |
    # undelivered | failed; and when it reached the phone (or was handed over, for channels
    # that report no further).
    delivery_status = Varchar(length=20, default="")
    delivered_at = Timestamptz(null=True, default=None)
    created_at = created_at_column()
    sent_at = Timestamptz(null=True, default=None)
