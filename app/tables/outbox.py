"""Outgoing SMS and email, written in the same transaction as what caused them."""

from piccolo.columns import Integer, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table

from app.tables.columns import created_at_column, public_id_column


class OutboxMessage(Table, tablename="outbox"):
    id: Serial
    public_id = public_id_column()
    channel = Varchar(length=10)  # sms | email
    recipient = Varchar(length=200)
    subject = Varchar(length=200, default="")
    # Never health information: "You have a new message. Open the portal to read it."
    body = Text()
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
    created_at = created_at_column()
    sent_at = Timestamptz(null=True, default=None)
