"""Switching between the records an account may open: its own, a child's, a parent's."""

from __future__ import annotations

from app.access import Actor, patient_context_resolve
from app.db import write_transaction
from app.errors import NotFoundError
from app.services.audit import audit_record
from app.tables import Patient, WebSession


async def profile_switch(*, actor: Actor, patient_public_id: str) -> None:
    """Open another person's record on this device, if a live grant allows it.

    Anything else (no grant, revoked, expired, unknown id) is 404: never a hint that the
    record exists."""
    context = await patient_context_resolve(actor)
    allowed = {profile.public_id for profile in context.profiles} if context else set()
    if patient_public_id not in allowed:
        raise NotFoundError(patient_public_id)
    async with write_transaction():
        patient = (
            await Patient.select(Patient.id).where(Patient.public_id == patient_public_id).first()
        )
        if patient is None:  # pragma: no cover - a live grant proves the record exists
            raise NotFoundError(patient_public_id)
        await WebSession.update({WebSession.acting_patient: patient["id"]}).where(
            WebSession.id == actor.session_id
        )
        await audit_record(
            actor=actor,
            patient_id=patient["id"],
            action="profile.switch",
            resource_type="Patient",
            resource_id=patient_public_id,
        )
