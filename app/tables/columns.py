"""Column helpers shared by every table."""

import secrets

from piccolo.columns import Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow


def new_public_id() -> str:
    """A random id for URLs (72 bits): never a sequential integer, never guessable."""
    return secrets.token_urlsafe(9)


def public_id_column() -> Varchar:
    return Varchar(length=16, unique=True, index=True, default=new_public_id)


def created_at_column() -> Timestamptz:
    return Timestamptz(default=TimestamptzNow())
