"""Secure messages: a conversation with the care team, FHIR Communication per message."""

from piccolo.columns import Boolean, ForeignKey, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table

from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Account, Patient, StaffUser


class Conversation(Table):
    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.restrict, index=True)
    subject = Varchar(length=200)
    # question | refill | appointment | billing | other
    topic = Varchar(length=20, default="question")
    status = Varchar(length=10, default="open")  # open | closed
    # For the patient only: hidden from every caregiver (docs/security.md).
    confidential = Boolean(default=False)
    created_at = created_at_column()
    last_message_at = created_at_column()


class Message(Table):
    id: Serial
    public_id = public_id_column()
    conversation = ForeignKey(references=Conversation, on_delete=OnDelete.cascade, index=True)
    author_account = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.set_null
    )
    author_staff = ForeignKey(
        references=StaffUser, null=True, default=None, on_delete=OnDelete.set_null
    )
    # patient (the patient or their caregiver wrote it) | clinic (the care team did)
    sender = Varchar(length=10)
    body = Text()
    sent_at = created_at_column()
    read_by_patient_at = Timestamptz(null=True, default=None)
