"""Errors services raise; handlers turn them into responses."""


class NotFoundError(Exception):
    """The thing does not exist within the caller's scope (another patient's id included)."""


class NotPermittedError(Exception):
    """The caller's grant does not cover this area."""
