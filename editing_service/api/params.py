"""Typed, bounded request values: what a route accepts is checked here, at the edge, before any work.

Both databases are served by the same code, so every value is bounded by what the narrower one
stores: ids and site names are short printable words, feature indices fit PostgreSQL's INTEGER,
offsets fit a signed 32-bit integer, and no string holds a NUL byte (PostgreSQL text cannot).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator

MAX_INDEX = 2**31 - 1  # PostgreSQL INTEGER
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
SITE_PATTERN = r"^[A-Za-z0-9_.-]{1,200}$"
NUL_BYTE = "must not contain a NUL byte"
# Free text in a query string travels in the request head, which the HTTP server (uvicorn's h11) refuses
# past 16 KiB when it arrives in pieces. Percent-encoded, a character takes up to 12 bytes, so query text
# is bounded to keep the longest request well inside that; longer text belongs in a request body.
QUERY_TEXT_MAX = 500


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_BYTE)
    return value


def no_nul_anywhere(value: Any) -> Any:
    """`value` (JSON: dicts, lists, strings, numbers), refused when any key or string in it holds a NUL."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            no_nul(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


Text = Annotated[str, AfterValidator(no_nul)]
JsonDocument = Annotated[dict[str, Any], AfterValidator(no_nul_anywhere)]

ProjectId = Annotated[str, Path(pattern=ID_PATTERN, description="a project's id")]
EditId = Annotated[str, Path(pattern=ID_PATTERN, description="an edit's id")]
JobId = Annotated[str, Path(pattern=ID_PATTERN, description="a job's id")]
DiscoveryId = Annotated[str, Path(pattern=ID_PATTERN, description="a discovery's id")]
SiteName = Annotated[str, Path(pattern=SITE_PATTERN, description="a site, e.g. blocks.0.out")]
FeatureIndex = Annotated[int, Path(ge=0, le=MAX_INDEX, description="a feature's index in its site's SAE")]
Offset = Annotated[int, Query(ge=0, le=MAX_INDEX, description="items to skip")]
