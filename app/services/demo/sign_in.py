"""Demo mode only: sign in as a demo persona without a passkey."""

from __future__ import annotations

from datetime import timedelta

from app.errors import NotFoundError
from app.i18n import N_
from app.services.demo.clinic import PERSONAS, Persona
from app.services.sessions import session_start, staff_session_start
from app.tables import AccessGrant, StaffUser

# The demo's staff personas: the front desk (invites patients, reads the demo outbox), an
# administrator (also searches the audit log), and the nurse and doctor who answer messages.
DEMO_STAFF = {
    "front-desk": ("tom.becker@riverside.example", N_("Tom Becker, front desk at the clinic")),
    "admin": ("rosa.diaz@riverside.example", N_("Rosa Diaz, clinic administrator")),
    "nurse": ("aisha.bello@riverside.example", N_("Aisha Bello, nurse: answers messages")),
    "clinician": ("ana.ruiz@riverside.example", N_("Dr. Ana Ruiz: decides refill requests")),
    "manager": (
        "lena.park@riverside.example",
        N_("Lena Park, practice manager: campaigns and the dashboard"),
    ),
}


def persona_find(slug: str) -> Persona:
    for persona in PERSONAS:
        if persona.slug == slug:
            return persona
    raise NotFoundError(slug)


async def demo_sign_in(*, slug: str, lifetime: timedelta, ip: str, user_agent: str) -> str:
    persona = persona_find(slug)
    grant = (
        await AccessGrant.select(AccessGrant.account, AccessGrant.patient)
        .where(AccessGrant.patient.mrn == persona.mrn, AccessGrant.kind == "self")
        .first()
    )
    if grant is None:
        raise NotFoundError(slug)
    return await session_start(
        account_id=grant["account"],
        acting_patient_id=grant["patient"],
        lifetime=lifetime,
        ip=ip,
        user_agent=user_agent,
        reason="demo",
    )


async def demo_staff_sign_in(*, slug: str, lifetime: timedelta, ip: str, user_agent: str) -> str:
    if slug not in DEMO_STAFF:
        raise NotFoundError(slug)
    email = DEMO_STAFF[slug][0]
    staff = await StaffUser.select(StaffUser.id).where(StaffUser.email == email).first()
    if staff is None:
        raise NotFoundError("staff")
    return await staff_session_start(
        staff_id=staff["id"], lifetime=lifetime, ip=ip, user_agent=user_agent, reason="demo"
    )
