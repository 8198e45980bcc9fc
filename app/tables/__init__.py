"""Piccolo tables, one module per domain. Each maps onto a FHIR R4 resource where one exists."""

from app.tables.audit import AuditChainHead, AuditEvent
from app.tables.clinic import Clinician, Location, Organization
from app.tables.codes import SignInCode
from app.tables.dashboard import DashboardFigure, Fact, FollowUp, SurveyAnswer
from app.tables.enrollment import EnrollmentInvite, JoinRequest, StaffInvite
from app.tables.messaging import (
    ClinicHoliday,
    ClinicHours,
    Conversation,
    ConversationNote,
    Message,
    MessageAttachment,
    RefillRequest,
    ReplyTemplate,
)
from app.tables.outbox import OutboxMessage
from app.tables.passkeys import Passkey, StaffPasskey, WebAuthnChallenge
from app.tables.people import AccessGrant, Account, CaregiverInvite, Patient, StaffUser
from app.tables.push import PushSubscription
from app.tables.results import LabObservation, LabReport
from app.tables.scheduling import (
    Appointment,
    AppointmentType,
    CareRecall,
    ScheduleBlock,
    ScheduleTemplate,
    Slot,
    WaitlistEntry,
    WaitlistOffer,
)
from app.tables.sessions import WebSession

__all__ = [
    "AccessGrant",
    "Account",
    "Appointment",
    "AppointmentType",
    "AuditChainHead",
    "AuditEvent",
    "CareRecall",
    "CaregiverInvite",
    "ClinicHoliday",
    "ClinicHours",
    "Clinician",
    "Conversation",
    "ConversationNote",
    "DashboardFigure",
    "EnrollmentInvite",
    "Fact",
    "FollowUp",
    "JoinRequest",
    "LabObservation",
    "LabReport",
    "Location",
    "Message",
    "MessageAttachment",
    "Organization",
    "OutboxMessage",
    "Passkey",
    "Patient",
    "PushSubscription",
    "RefillRequest",
    "ReplyTemplate",
    "ScheduleBlock",
    "ScheduleTemplate",
    "SignInCode",
    "Slot",
    "StaffInvite",
    "StaffPasskey",
    "StaffUser",
    "SurveyAnswer",
    "WaitlistEntry",
    "WaitlistOffer",
    "WebAuthnChallenge",
    "WebSession",
]
