"""Account preferences, and where to reach an account's person."""

from __future__ import annotations

from app.access import Actor
from app.db import write_transaction
from app.i18n import SUPPORTED_LOCALES
from app.services.self_access import HOLDER_COLUMNS, holder_from, is_minor, self_access_refusal
from app.tables import AccessGrant, Account


async def account_set_locale(*, actor: Actor, locale: str | None) -> None:
    """None returns the account to following the browser's language."""
    if locale is not None and locale not in SUPPORTED_LOCALES:
        raise ValueError(locale)
    async with write_transaction():
        await Account.update({Account.locale: locale}).where(Account.id == actor.account_id)


async def account_contacts(account_id: int) -> tuple[str | None, str | None]:
    """(phone, email) for messages to this person: their own record's, else (a caregiver
    with no record here) the account's, which their invitation went to.

    A teenager's record often carries the family phone as well as their own: only a contact
    the rules let hold the teenager's own access (marked as theirs, used by no guardian or
    other adult) is theirs to be told things on, so nothing about them reaches a parent."""
    own = (
        await AccessGrant.select(
            *(getattr(AccessGrant.patient, c._meta.name) for c in HOLDER_COLUMNS)
        )
        .where(
            AccessGrant.account == account_id,
            AccessGrant.kind == "self",
            AccessGrant.revoked_at.is_null(),
        )
        .first()
    )
    if own is not None and (own["patient.phone"] or own["patient.email"]):
        holder = holder_from(own, "patient.")
        if not is_minor(holder.birth_date):
            return holder.phone, holder.email
        phone = holder.phone if await self_access_refusal(holder, "sms") is None else None
        email = holder.email if await self_access_refusal(holder, "email") is None else None
        return phone, email
    account = (
        await Account.select(Account.phone, Account.email).where(Account.id == account_id).first()
    )
    if account is None:
        return None, None
    return account["phone"], account["email"]
