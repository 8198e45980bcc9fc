"""Piccolo tables, one module per domain. Each maps onto a FHIR R4 resource where one exists."""

from app.tables.audit import AuditEvent
from app.tables.clinic import Clinician, Location, Organization
from app.tables.codes import SignInCode
from app.tables.enrollment import EnrollmentInvite
from app.tables.messaging import Conversation, Message
from app.tables.outbox import OutboxMessage
from app.tables.passkeys import Passkey, WebAuthnChallenge
from app.tables.people import AccessGrant, Account, Patient, StaffUser
from app.tables.results import LabObservation, LabReport
from app.tables.scheduling import Appointment
from app.tables.sessions import WebSession

__all__ = [
    "AccessGrant",
    "Account",
    "Appointment",
    "AuditEvent",
    "Clinician",
    "Conversation",
    "EnrollmentInvite",
    "LabObservation",
    "LabReport",
    "Location",
    "Message",
    "Organization",
    "OutboxMessage",
    "Passkey",
    "Patient",
    "SignInCode",
    "StaffUser",
    "WebAuthnChallenge",
    "WebSession",
]
