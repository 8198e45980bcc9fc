"""Account preferences."""

from __future__ import annotations

from app.db import write_transaction
from app.i18n import SUPPORTED_LOCALES
from app.services.access import Actor
from app.tables import Account


async def account_set_locale(*, actor: Actor, locale: str | None) -> None:
    """None returns the account to following the browser's language."""
    if locale is not None and locale not in SUPPORTED_LOCALES:
        raise ValueError(locale)
    async with write_transaction():
        await Account.update({Account.locale: locale}).where(Account.id == actor.account_id)
