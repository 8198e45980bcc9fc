"""Signing in with a code: the code itself, the pause after too many, and the notice when
someone signed in through a contact others share."""

from __future__ import annotations

from app.i18n import N_
from app.notices.delivery import Contact, contacts_of, send_to
from app.notices.words import Message, account_locale, record_locale, say_in
from app.services.accounts import account_contacts
from app.tables import Patient

SIGN_IN_CODE = Message(
    "sign_in_code",
    subject=N_("Your sign-in code"),
    text=N_("Your portal sign-in code is %(code)s. It works for 10 minutes. Never share it."),
)
CODES_PAUSED = Message(
    "codes_paused",
    subject=N_("Sign-in codes paused"),
    text=N_(
        "Too many sign-in codes were asked for or tried for your patient portal account today, "
        "so we paused codes for a day. If this was not you, call your clinic. "
        "You can still sign in with a passkey."
    ),
)
SHARED_SIGN_IN = Message(
    "shared_sign_in",
    subject=N_("Someone signed in to your account"),
    text=N_(
        "Someone signed in to your patient portal account with a code sent to a phone or email "
        "that others also use, and your date of birth. If it was not you, call the clinic."
    ),
)


async def send_sign_in_code(*, to: Contact, code: str, account_id: int | None) -> None:
    """A sign-in code to the phone or email it was asked for: in the language of the account
    it signs in, if known (a contact several people share names no one until the date of
    birth)."""
    _ = say_in(await account_locale(account_id))
    await send_to(to=to, words=SIGN_IN_CODE.words(_, code=code), kind="sign_in_code")


async def send_codes_paused(*, account_id: int | None, patient_id: int | None) -> None:
    """Codes stopped for a day for a contact: the person on file (the account, else the
    record a poster code was for) hears of it at every contact we have for them."""
    if account_id is not None:
        contacts = contacts_of(*await account_contacts(account_id))
        locale = await account_locale(account_id)
    elif patient_id is not None:
        row = (
            await Patient.select(Patient.phone, Patient.email)
            .where(Patient.id == patient_id)
            .first()
        )
        contacts = contacts_of(row["phone"], row["email"]) if row else []
        locale = await record_locale(patient_id)
    else:
        return
    words = CODES_PAUSED.words(say_in(locale))
    for contact in contacts:
        await send_to(to=contact, words=words, kind="codes_paused")


async def send_shared_sign_in_notice(*, account_id: int, to: list[Contact]) -> None:
    """Someone signed in to this account through a contact others share: its other contacts
    hear of it, in the account holder's language (not that of whoever signed in)."""
    words = SHARED_SIGN_IN.words(say_in(await account_locale(account_id)))
    for contact in to:
        await send_to(to=contact, words=words, kind="shared_sign_in")
