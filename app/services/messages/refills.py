"""Refill requests: which medicines a patient can pick from, and the prescriber's decision.

A refill is a conversation with the topic "refill" and one `RefillRequest` row per medicine,
routed to the refills pool and to the patient's own clinician as prescriber. The medicines
come from the health record's active medication list when it has one; a patient can always
type a name, so a request never waits on the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.access import PatientContext
from app.db import write_transaction
from app.services.audit import audit_record
from app.services.record import record_active_medications

MAX_MEDICATIONS = 10
MAX_NAME = 200


@dataclass(frozen=True)
class MedicationChoice:
    """An active medication the patient can ask to refill: the record's id and its name,
    and whether the record keeps it confidential (only the patient themself sees those)."""

    ref: str
    name: str
    confidential: bool = False


async def medications_active(context: PatientContext) -> list[MedicationChoice]:
    """The patient's active medications to pick from, read through the context from the
    health record (audited). A grant that does not open the record (a caregiver for
    messages only) gets an empty list, and the names are typed."""
    context.require("messages")
    if not context.may("record"):
        return []
    async with write_transaction():
        await audit_record(
            actor=context.actor,
            context=context,
            action="record.medications",
            resource_type="MedicationRequest",
        )
        lines = await record_active_medications(context)
    return [
        MedicationChoice(ref=line.public_id, name=line.name, confidential=line.confidential)
        for line in lines
    ]


def medications_confidential(picked: list[str], choices: list[MedicationChoice]) -> bool:
    """Whether any medicine picked is a confidential one: its refill request names it, so
    the conversation must be as private as the medicine."""
    chosen = set(picked)
    return any(choice.confidential for choice in choices if choice.ref in chosen)


def medications_chosen(
    picked: list[str], typed: str, choices: list[MedicationChoice]
) -> list[tuple[str, str]]:
    """(record id or "", name) for each medicine asked for: the ones picked from the list
    (only ids that are on it) and the ones typed, one a line, without repeats."""
    by_ref = {choice.ref: choice.name for choice in choices}
    chosen: list[tuple[str, str]] = [(ref, by_ref[ref]) for ref in picked if ref in by_ref]
    for line in typed.splitlines():
        name = " ".join(line.split())[:MAX_NAME]
        if name:
            chosen.append(("", name))
    seen: set[str] = set()
    unique: list[tuple[str, str]] = []
    for ref, name in chosen:
        if name.casefold() not in seen:
            seen.add(name.casefold())
            unique.append((ref, name))
    return unique
