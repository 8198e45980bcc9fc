"""Self-enrollment from a clinic poster: name, date of birth and a phone or email.

When all of it matches one record, a one-time code goes to that phone or email (which is
the one already on the record). When it does not, the front desk gets a join request. The
person sees the same answer either way, so the form cannot be used to learn who is a patient.
A match on a minor becomes a join request too: name, date of birth and a family phone are
things a parent knows, so a minor's own account starts with the front desk (self_access.py).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

from app.errors import NotFoundError
from app.services.self_access import is_minor
from app.services.sign_in import CodeError, CodeTarget, code_issue, normalise_contact
from app.tables import AccessGrant, JoinRequest, Location, Patient


@dataclass(frozen=True)
class JoinLocation:
    id: int
    code: str
    name: str


async def join_location(code: str) -> JoinLocation:
    row = (
        await Location.select(Location.id, Location.code, Location.name)
        .where(Location.code == code.strip().upper())
        .first()
    )
    if row is None:
        raise NotFoundError(code)
    return JoinLocation(**row)


def comparable_name(name: str) -> str:
    """ "José " and "jose" are the same name here: no accents, case or extra spaces."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.casefold().split())


async def join_start(
    *,
    location: JoinLocation,
    given_name: str,
    family_name: str,
    birth_date: date,
    contact: str,
    secret: str,
    ip: str,
    user_agent: str,
) -> str:
    """Send a code when the details match one record, else file a join request. Returns the
    code handle for the browser either way (a code that matches nobody never works)."""
    parsed = normalise_contact(contact)
    if parsed is None:
        raise CodeError("contact")
    channel, value = parsed
    given, family = comparable_name(given_name), comparable_name(family_name)

    async def matching_record() -> CodeTarget:
        contact_column = Patient.phone if channel == "sms" else Patient.email
        candidates = await Patient.select(
            Patient.id, Patient.given_name, Patient.preferred_name, Patient.family_name
        ).where(
            Patient.birth_date == birth_date,
            contact_column == value,
            Patient.deceased_at.is_null(),
        )
        matches = [
            row["id"]
            for row in candidates
            if comparable_name(row["family_name"]) == family
            and given
            in {comparable_name(row["given_name"]), comparable_name(row["preferred_name"] or "")}
        ]
        if len(matches) != 1 or is_minor(birth_date):
            await _file_join_request(location, given_name, family_name, birth_date, value)
            return CodeTarget()
        account = (
            await AccessGrant.select(AccessGrant.account)
            .where(
                AccessGrant.patient == matches[0],
                AccessGrant.kind == "self",
                AccessGrant.revoked_at.is_null(),
            )
            .first()
        )
        return CodeTarget(account=account["account"] if account else None, patient=matches[0])

    return await code_issue(
        channel=channel,
        value=value,
        find=matching_record,
        secret=secret,
        ip=ip,
        user_agent=user_agent,
    )


async def _file_join_request(
    location: JoinLocation, given_name: str, family_name: str, birth_date: date, contact: str
) -> None:
    """One open request per person: asking twice does not fill the front desk's list."""
    already = await JoinRequest.exists().where(
        JoinRequest.contact == contact,
        JoinRequest.birth_date == birth_date,
        JoinRequest.closed_at.is_null(),
    )
    if not already:
        await JoinRequest.insert(
            JoinRequest(
                location=location.id,
                given_name=" ".join(given_name.split())[:100],
                family_name=" ".join(family_name.split())[:100],
                birth_date=birth_date,
                contact=contact,
            )
        )
