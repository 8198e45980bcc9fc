"""The clinic console: find a patient, invite them, follow up on join requests, and (in the
demo) read what the clinic sent. Every look at a patient is audited."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from app.access import StaffActor
from app.clinic import clinic_today
from app.clock import utcnow
from app.db import write_transaction
from app.errors import NotFoundError
from app.i18n import current_locale
from app.services.audit import audit_staff
from app.services.enrollment import Invitation, invite_create
from app.services.outbox import (
    DeliveryProblem,
    OutboxLine,
    outbox_failing,
    outbox_revive,
    outbox_texts,
)
from app.services.self_access import SelfAccessError, adult_contacts, guardian_contacts
from app.tables import AccessGrant, EnrollmentInvite, JoinRequest, Patient

SEARCH_LIMIT = 25
_MRN = re.compile(r"^[A-Za-z]{0,4}-?\d{4,}$")
_SLASHED_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
# Languages that write the day before the month (14/3/1985).
_DAY_FIRST = frozenset({"es"})


@dataclass(frozen=True)
class PatientLine:
    public_id: str
    mrn: str
    given_name: str
    family_name: str
    preferred_name: str | None
    birth_date: date


@dataclass(frozen=True)
class PatientCard:
    id: int
    public_id: str
    mrn: str
    given_name: str
    family_name: str
    preferred_name: str | None
    birth_date: date
    age: int
    phone: str | None
    email: str | None
    phone_is_own: bool
    email_is_own: bool
    enrolled: bool
    last_invite_via: str | None
    last_invite_at: datetime | None
    last_invite_state: str | None  # open | used | expired


@dataclass(frozen=True)
class SearchTerms:
    names: tuple[str, ...]
    birth_date: date | None
    mrn: str | None

    @property
    def empty(self) -> bool:
        return not self.names and self.birth_date is None and self.mrn is None


def search_terms(text: str, locale: str = "en") -> SearchTerms:
    """One box for everything: "garcia 3/14/1985" (14/3/1985 in Spanish), "1985-03-14",
    "RFH-100001", "maria garcia"."""
    names: list[str] = []
    birth_date: date | None = None
    mrn: str | None = None
    for word in text.replace(",", " ").split():
        slashed = _SLASHED_DATE.match(word)
        try:
            if slashed:
                first, second, year = (int(part) for part in slashed.groups())
                day, month = (first, second) if locale in _DAY_FIRST else (second, first)
                birth_date = date(year, month, day)
                continue
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", word):
                birth_date = date.fromisoformat(word)
                continue
        except ValueError:
            pass
        if _MRN.match(word):
            mrn = word.upper()
        else:
            names.append(word)
    return SearchTerms(tuple(names), birth_date, mrn)


def _like_prefix(word: str) -> str:
    """A prefix pattern. LIKE's wildcards are dropped, not escaped: SQLite and PostgreSQL
    escape differently, and names do not contain them."""
    return "".join(char for char in word if char not in "%_\\") + "%"


async def patients_search(*, staff: StaffActor, text: str) -> list[PatientLine]:
    """Patients whose name words, date of birth or MRN match; the search itself is audited
    (not its words, which are personal data)."""
    terms = search_terms(text, current_locale())
    if terms.empty:
        return []
    # LOWER(...) LIKE: case-insensitive on both engines (SQLite has no ILIKE).
    conditions: list[str] = []
    values: list[object] = []
    if terms.mrn:
        conditions.append("LOWER(mrn) LIKE {}")
        values.append(_like_prefix(terms.mrn.lower()))
    if terms.birth_date:
        conditions.append("birth_date = {}")
        values.append(terms.birth_date)
    for word in terms.names:
        conditions.append(
            "(LOWER(given_name) LIKE {} OR LOWER(family_name) LIKE {}"
            " OR LOWER(COALESCE(preferred_name, '')) LIKE {})"
        )
        values.extend([_like_prefix(word.lower())] * 3)
    # Only fixed SQL fragments are joined here; every typed word is a bound parameter.
    sql = (
        "SELECT id, public_id, mrn, given_name, family_name, preferred_name,"  # noqa: S608
        f" birth_date FROM patient WHERE {' AND '.join(conditions)}"
        f" ORDER BY family_name, given_name LIMIT {SEARCH_LIMIT}"
    )
    rows = await Patient.raw(sql, *values)
    await audit_staff_saw(
        staff=staff,
        action="staff.patient_search",
        patients=[(row["id"], row["public_id"]) for row in rows],
    )
    return [PatientLine(**{k: v for k, v in row.items() if k != "id"}) for row in rows]


async def audit_staff_saw(
    *, staff: StaffActor, action: str, patients: list[tuple[int, str]]
) -> None:
    """One audit row for each patient a list showed (so it reaches that patient's access
    history), all in one transaction and written together; one row without a patient when
    the list was empty."""
    async with write_transaction():
        if not patients:
            await audit_staff(staff=staff, action=action)
        for patient_id, public_id in dict(patients).items():
            await audit_staff(
                staff=staff,
                action=action,
                patient_id=patient_id,
                resource_type="Patient",
                resource_id=public_id,
            )


async def patient_card(*, staff: StaffActor, public_id: str) -> PatientCard:
    """Who the patient is and whether they use the portal; audited as a look at the record."""
    async with write_transaction():
        patient = await Patient.objects().where(Patient.public_id == public_id).first()
        if patient is None:
            raise NotFoundError(public_id)
        enrolled = await AccessGrant.exists().where(
            AccessGrant.patient == patient.id,
            AccessGrant.kind == "self",
            AccessGrant.revoked_at.is_null(),
        )
        invite = (
            await EnrollmentInvite.select(
                EnrollmentInvite.via,
                EnrollmentInvite.created_at,
                EnrollmentInvite.used_at,
                EnrollmentInvite.voided_at,
                EnrollmentInvite.expires_at,
            )
            .where(EnrollmentInvite.patient == patient.id)
            .order_by(EnrollmentInvite.created_at, ascending=False)
            .first()
        )
        await audit_staff(
            staff=staff,
            action="staff.patient_view",
            patient_id=patient.id,
            resource_type="Patient",
            resource_id=patient.public_id,
        )
    state = None
    if invite is not None:
        if invite["used_at"]:
            state = "used"
        elif invite["voided_at"] or invite["expires_at"] <= utcnow():
            state = "expired"
        else:
            state = "open"
    today = clinic_today()
    birth = patient.birth_date
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return PatientCard(
        id=patient.id,
        public_id=patient.public_id,
        mrn=patient.mrn,
        given_name=patient.given_name,
        family_name=patient.family_name,
        preferred_name=patient.preferred_name,
        birth_date=birth,
        age=age,
        phone=patient.phone,
        email=patient.email,
        phone_is_own=patient.phone_is_own,
        email_is_own=patient.email_is_own,
        enrolled=enrolled,
        last_invite_via=invite["via"] if invite else None,
        last_invite_at=invite["created_at"] if invite else None,
        last_invite_state=state,
    )


async def patient_invite(
    *, staff: StaffActor, public_id: str, via: str, base_url: str, clinic_name: str
) -> Invitation:
    """Send (sms, email) or show (qr) a new enrollment link; any older link stops working.
    A child, or a teenager without a contact of their own, gets SelfAccessError instead."""
    patient = await Patient.select(Patient.mrn).where(Patient.public_id == public_id).first()
    if patient is None:
        raise NotFoundError(public_id)
    return await invite_create(
        mrn=patient["mrn"],
        via=via,
        base_url=base_url,
        clinic_name=clinic_name,
        staff_id=staff.staff_id,
        ip=staff.ip,
        user_agent=staff.user_agent,
    )


async def patient_own_contacts_set(
    *, staff: StaffActor, public_id: str, phone_is_own: bool, email_is_own: bool
) -> None:
    """Mark which of the record's phone and email are the patient's own (a teenager's, not a
    parent's): the only contacts a teenager's own account may use. A contact a parent or
    guardian with access uses is refused (SelfAccessError `guardian_contact`), and so is one
    on another adult's record (`adult_contact`: a parent's phone, whether or not the parent
    has access or an account); nothing changed."""
    async with write_transaction():
        patient = (
            await Patient.select(Patient.id, Patient.phone, Patient.email)
            .where(Patient.public_id == public_id)
            .first()
        )
        if patient is None:
            raise NotFoundError(public_id)
        phone_is_own = phone_is_own and bool(patient["phone"])
        email_is_own = email_is_own and bool(patient["email"])
        marked = {patient["phone"]} if phone_is_own else set()
        marked |= {patient["email"]} if email_is_own else set()
        if marked & await guardian_contacts(patient["id"]):
            raise SelfAccessError("guardian_contact")
        if await adult_contacts(patient["id"], marked):
            raise SelfAccessError("adult_contact")
        await Patient.update(
            {Patient.phone_is_own: phone_is_own, Patient.email_is_own: email_is_own}
        ).where(Patient.id == patient["id"])
        await audit_staff(
            staff=staff,
            action="staff.own_contacts",
            patient_id=patient["id"],
            resource_type="Patient",
            resource_id=public_id,
        )


@dataclass(frozen=True)
class JoinLine:
    public_id: str
    given_name: str
    family_name: str
    birth_date: date
    contact: str
    location_name: str | None
    created_at: datetime


async def join_requests_open(*, staff: StaffActor) -> list[JoinLine]:
    rows = await (
        JoinRequest.select(
            JoinRequest.public_id,
            JoinRequest.given_name,
            JoinRequest.family_name,
            JoinRequest.birth_date,
            JoinRequest.contact,
            JoinRequest.location.name.as_alias("location_name"),
            JoinRequest.created_at,
        )
        .where(JoinRequest.closed_at.is_null())
        .order_by(JoinRequest.created_at)
    )
    async with write_transaction():
        await audit_staff(staff=staff, action="staff.join_requests_view")
    return [JoinLine(**row) for row in rows]


async def join_requests_count() -> int:
    return int(await JoinRequest.count().where(JoinRequest.closed_at.is_null()))


async def join_request_close(*, staff: StaffActor, public_id: str, outcome: str) -> None:
    """Done: the person was found and invited (`enrolled`), or it was not for us (`dismissed`)."""
    if outcome not in ("enrolled", "dismissed"):
        raise ValueError(outcome)
    async with write_transaction():
        closed = (
            await JoinRequest.update(
                {
                    JoinRequest.closed_at: utcnow(),
                    JoinRequest.outcome: outcome,
                    JoinRequest.closed_by_staff: staff.staff_id,
                }
            )
            .where(JoinRequest.public_id == public_id, JoinRequest.closed_at.is_null())
            .returning(JoinRequest.id)
        )
        if not closed:
            raise NotFoundError(public_id)
        await audit_staff(
            staff=staff,
            action=f"staff.join_request_{outcome}",
            resource_type="JoinRequest",
            resource_id=public_id,
        )


async def outbox_recent(*, staff: StaffActor, limit: int = 50) -> list[OutboxLine]:
    """The demo clinic's texts and emails, newest first (demo mode only: they carry links)."""
    return await outbox_texts(limit=limit)


async def deliveries_failing(*, staff: StaffActor, limit: int = 100) -> list[DeliveryProblem]:
    """Messages that gave up (dead) or keep failing: never their text, which may carry a
    link or a code."""
    return await outbox_failing(limit=limit)


async def delivery_retry(*, staff: StaffActor, public_id: str) -> None:
    """Send a dead message again (after the phone number or settings were fixed), while its
    text is still kept."""
    async with write_transaction():
        if not await outbox_revive(public_id):
            raise NotFoundError(public_id)
        await audit_staff(
            staff=staff,
            action="staff.delivery_retry",
            resource_type="Outbox",
            resource_id=public_id,
        )
