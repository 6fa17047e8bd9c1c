"""Checks of the paging arguments shared by the list functions."""

from __future__ import annotations

from editing_service.store.errors import Invalid

MAX_LIMIT = 1000
INVALID_LIMIT = "limit must be an integer from 1 to {max}, not {value!r}."
INVALID_OFFSET = "offset must be a non-negative integer, not {value!r}."


def check_paging(limit: int | None, offset: int) -> None:
    """Raise Invalid unless 1 <= limit <= MAX_LIMIT (or limit is None, meaning all) and offset >= 0."""
    if limit is not None and (not _is_int(limit) or not 1 <= limit <= MAX_LIMIT):
        raise Invalid(INVALID_LIMIT.format(max=MAX_LIMIT, value=limit))
    if not _is_int(offset) or offset < 0:
        raise Invalid(INVALID_OFFSET.format(value=offset))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
