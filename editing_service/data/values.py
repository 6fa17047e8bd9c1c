"""Raw cell values: how a value in a data column is compared with a value written in a spec.

A spec writes raw values in YAML (`professor: 21`, `F: 1`, `train: train`) while the data holds them as
whatever the reader produced (int64 from parquet, str from CSV, numpy scalars from pandas). Both sides
are reduced to one string key so that `21`, `21.0` and `"21"` match, and `None` never matches.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

RawValue = str | int | float | bool
"""A value as it is stored in a data column (the right-hand side of a spec's `values` mappings)."""

DUPLICATE_NAMES = "{what} has duplicate names: {duplicates}."
VALUES_KEYS_MISMATCH = "{what}: names are {names} but values maps {keys}; they must name the same things."
DUPLICATE_RAW_VALUES = "{what}: {first!r} and {second!r} map to the same raw value {value!r}."


def raw_key(value: object) -> str | None:
    """Return the comparison key of one raw value; None for a missing value.

    Parameters
    ----------
    value : object
        A value from a spec or from a data column.

    Returns
    -------
    str or None
        `str(value)`, with integral floats written as ints; None for None and NaN.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def encode_column(values: pd.Series, lookup: dict[str, int]) -> tuple[np.ndarray, list[object]]:
    """Map a column's raw values to integer codes through `lookup`.

    Parameters
    ----------
    values : pandas.Series
        The raw column.
    lookup : dict of str to int
        Key of a raw value (see `raw_key`) to its code.

    Returns
    -------
    codes : numpy.ndarray
        int64 [n]: the code of each row, -1 where the value is not in `lookup` (or missing).
    unknown : list
        The distinct raw values that are not in `lookup`, in order of first appearance.
    """
    positions, uniques = pd.factorize(values, use_na_sentinel=True)
    unique_codes = np.array([lookup.get(raw_key(u), -1) for u in uniques] + [-1], dtype=np.int64)
    codes = unique_codes[positions]  # position -1 (missing) picks the trailing -1
    unknown: list[object] = [
        u.item() if isinstance(u, np.generic) else u
        for u, code in zip(uniques, unique_codes[:-1], strict=True)
        if code < 0
    ]
    if (positions < 0).any():
        unknown.append(None)
    return codes, unknown


def describe_values(values: list[object], limit: int = 10) -> str:
    """Render distinct raw values for an error message, at most `limit` of them."""
    shown = sorted(values, key=lambda v: (v is None, str(v)))[:limit]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return f"{shown!r}{more}"


def check_names(names: list[str], values: Mapping[str, RawValue] | None, what: str) -> None:
    """Check declared names, and their optional raw-value mapping, against each other.

    Parameters
    ----------
    names : list of str
        Declared names, in order; they must be unique.
    values : mapping of str to RawValue or None
        Name to the raw value that stands for it in the data; must map exactly `names`, to distinct values.
    what : str
        What is being declared, for messages (e.g. "labels", "protected attribute 'gender'").
    """
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(DUPLICATE_NAMES.format(what=what, duplicates=duplicates))
    if values is None:
        return
    if set(values) != set(names):
        raise ValueError(VALUES_KEYS_MISMATCH.format(what=what, names=names, keys=list(values)))
    seen: dict[str | None, str] = {}
    for name, raw in values.items():
        key = raw_key(raw)
        if key in seen:
            raise ValueError(DUPLICATE_RAW_VALUES.format(what=what, first=seen[key], second=name, value=raw))
        seen[key] = name


def name_lookup(names: list[str], values: Mapping[str, RawValue] | None) -> dict[str, int]:
    """Map the key of each name's raw value (the name itself when `values` is None) to its index."""
    lookup: dict[str, int] = {}
    for index, name in enumerate(names):
        key = raw_key(values[name] if values is not None else name)
        if key is not None:
            lookup[key] = index
    return lookup


def fill_names(data: object, names_field: str = "names", values_field: str = "values") -> object:
    """Before-validation helper: when only `values` is given, take the names from its keys, in order."""
    if isinstance(data, dict) and data.get(names_field) is None and isinstance(data.get(values_field), dict):
        return {**data, names_field: list(data[values_field])}
    return data
