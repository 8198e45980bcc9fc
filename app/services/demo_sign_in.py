"""Demo mode only: sign in as a demo persona without a passkey."""

from __future__ import annotations

from datetime import timedelta

from app.services.demo_clinic import PERSONAS, Persona
from app.services.errors import NotFoundError
from app.services.sessions import session_start
from app.tables import AccessGrant


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
