"""Piccolo tables, one module per domain. Each maps onto a FHIR R4 resource where one exists."""

from app.tables.audit import AuditChainHead, AuditEvent
from app.tables.bills import (
    BillingAccount,
    BillingMember,
    LedgerEntry,
    Payment,
    PaymentPlan,
    PlanInstalment,
    SavedCard,
    Statement,
)
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
from app.tables.outreach import Campaign, CampaignSend, NewsNote, SmsOptOut, SmsReceived
from app.tables.passkeys import Passkey, StaffPasskey, WebAuthnChallenge
from app.tables.people import AccessGrant, Account, CaregiverInvite, Patient, StaffUser
from app.tables.push import PushSubscription
from app.tables.record import (
    Allergy,
    FhirSource,
    Immunization,
    Medication,
    Problem,
    RecordDocument,
    VisitSummary,
)
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
    "Allergy",
    "Appointment",
    "AppointmentType",
    "AuditChainHead",
    "AuditEvent",
    "BillingAccount",
    "BillingMember",
    "Campaign",
    "CampaignSend",
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
    "FhirSource",
    "FollowUp",
    "Immunization",
    "JoinRequest",
    "LabObservation",
    "LabReport",
    "LedgerEntry",
    "Location",
    "Medication",
    "Message",
    "MessageAttachment",
    "NewsNote",
    "Organization",
    "OutboxMessage",
    "Passkey",
    "Patient",
    "Payment",
    "PaymentPlan",
    "PlanInstalment",
    "Problem",
    "PushSubscription",
    "RecordDocument",
    "RefillRequest",
    "ReplyTemplate",
    "SavedCard",
    "ScheduleBlock",
    "ScheduleTemplate",
    "SignInCode",
    "Slot",
    "SmsOptOut",
    "SmsReceived",
    "StaffInvite",
    "StaffPasskey",
    "StaffUser",
    "Statement",
    "SurveyAnswer",
    "VisitSummary",
    "WaitlistEntry",
    "WaitlistOffer",
    "WebAuthnChallenge",
    "WebSession",
]
