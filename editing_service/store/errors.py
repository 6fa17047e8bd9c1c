"""The store's errors; the REST layer maps them to 404 (NotFound), 409 (Conflict) and 400 (Invalid)."""

from __future__ import annotations

INVALID_CHOICE = "{what} must be one of {allowed}, not {value!r}."


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class NotFound(StoreError, LookupError):
    """A project, job, feature, flag or edit that the caller named does not exist."""


class Conflict(StoreError, ValueError):
    """The request is well formed but the stored state does not allow it (e.g. cancelling a finished job)."""


class Invalid(StoreError, ValueError):
    """An argument is outside its allowed values."""


def check_choice(value: object, allowed: tuple[str, ...], what: str) -> str:
    """Return `value` if it is one of `allowed`, else raise Invalid naming the allowed values."""
    if not isinstance(value, str) or value not in allowed:
        raise Invalid(INVALID_CHOICE.format(what=what, value=value, allowed=", ".join(map(repr, allowed))))
    return value
