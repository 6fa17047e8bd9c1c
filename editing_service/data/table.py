"""One split's rows, checked against the spec and encoded: texts, class indices, group indices.

Columns of the `datasets.ClassLabel` type are compared by their class names unless the spec maps names
to raw values. This is where the data meets the spec: missing columns, undeclared label or group values, protected
columns with a single value, and values of the text column that are not text are refused here, with a
message that says what was found and where.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import datasets
import numpy as np
import pandas as pd

from editing_service.data.spec import DatasetSpec
from editing_service.data.splits import ColumnSplits
from editing_service.data.values import describe_values, encode_column, name_lookup

logger = logging.getLogger(__name__)

MISSING_COLUMN = "Dataset {name!r} has no {role} column {column!r}; its columns are: {available}."
EMPTY_SPLIT = "Split {split!r} of dataset {name!r} has no rows."
UNKNOWN_LABEL_VALUES = (
    "Label column {column!r} of dataset {name!r} holds values that are not declared labels in split {split!r}: "
    "{values} ({count} rows); the declared labels are {declared}. Declare them, or set other_labels: drop "
    "to leave those rows out."
)
NO_DECLARED_LABELS = "Split {split!r} of dataset {name!r} has no rows with a declared label ({declared})."
UNKNOWN_GROUP_VALUES = (
    "Protected column {column!r} of dataset {name!r} holds values that are not declared groups of "
    "{attribute!r} in split {split!r}: {values} ({count} rows); the declared groups are {declared}."
)
SINGLE_GROUP = (
    "Protected column {column!r} of dataset {name!r} has a single group ({group!r}) in split {split!r}: "
    "a protected attribute needs at least two groups to measure anything."
)
NON_TEXT_VALUES = (
    "Text column {column!r} of dataset {name!r} has {count} values that are not non-empty text "
    "(None, numbers or empty strings) in split {split!r}; the first is at row {row} "
    "(data rows of the source, counted from 0)."
)


@dataclass(frozen=True, eq=False)
class SplitTable:
    """The rows of one split that carry a declared label, encoded."""

    split: str
    dataset: datasets.Dataset  # those rows, all source columns
    rows: np.ndarray  # int64 [n]: row of each in the source (the file, or the source's own split)
    texts: list[str]
    labels: np.ndarray  # int64 [n]: index into spec.labels
    groups: dict[str, np.ndarray]  # attribute name -> int64 [n]: index into the attribute's groups

    def __len__(self) -> int:
        return len(self.texts)


def check_columns(spec: DatasetSpec, columns: list[str]) -> None:
    """Raise when a column the spec names is not among `columns`."""
    wanted = [("text", spec.text_column), ("label", spec.label_column)]
    wanted += [(f"protected attribute {a.name!r}", a.column) for a in spec.protected]
    if isinstance(spec.splits, ColumnSplits):
        wanted.append(("split", spec.splits.column))
    for role, column in wanted:
        if column not in columns:
            raise ValueError(
                MISSING_COLUMN.format(name=spec.name, role=role, column=column, available=columns)
            )


def build_split_table(
    spec: DatasetSpec, split: str, dataset: datasets.Dataset, rows: np.ndarray
) -> SplitTable:
    """Check and encode the rows of one split.

    Parameters
    ----------
    spec : DatasetSpec
        The spec the rows are checked against.
    split : str
        The split's name, for messages.
    dataset : datasets.Dataset
        The split's rows.
    rows : numpy.ndarray
        int64 [len(dataset)]: the source row of each, for messages.

    Returns
    -------
    SplitTable
        The rows with a declared label (all rows when `spec.other_labels` is "error").
    """
    if len(dataset) == 0:
        raise ValueError(EMPTY_SPLIT.format(split=split, name=spec.name))
    check_columns(spec, list(dataset.column_names))
    columns = list(dict.fromkeys([spec.text_column, spec.label_column, *(a.column for a in spec.protected)]))
    frame = dataset.select_columns(columns).to_pandas()
    named_by_value = {spec.label_column: spec.label_values is not None}
    named_by_value.update({a.column: a.values is not None for a in spec.protected})
    _decode_class_labels(dataset, frame, [c for c, explicit in named_by_value.items() if not explicit])

    labels, unknown = encode_column(frame[spec.label_column], name_lookup(spec.labels, spec.label_values))
    keep = labels >= 0
    if unknown and spec.other_labels == "error":
        raise ValueError(
            UNKNOWN_LABEL_VALUES.format(
                column=spec.label_column,
                name=spec.name,
                split=split,
                values=describe_values(unknown),
                count=int((~keep).sum()),
                declared=_declared(spec.labels, spec.label_values),
            )
        )
    if not keep.any():
        raise ValueError(
            NO_DECLARED_LABELS.format(
                split=split, name=spec.name, declared=_declared(spec.labels, spec.label_values)
            )
        )
    frame = frame[keep]
    groups = {a.name: _encode_groups(spec, a.name, split, frame) for a in spec.protected}
    texts = _checked_texts(spec, split, frame[spec.text_column].tolist(), rows[keep])
    if not keep.all():
        logger.info(
            "Split %s of %s: kept %d of %d rows (declared labels only)",
            split,
            spec.name,
            int(keep.sum()),
            len(keep),
        )
        dataset = dataset.select(np.flatnonzero(keep))
    return SplitTable(
        split=split, dataset=dataset, rows=rows[keep], texts=texts, labels=labels[keep], groups=groups
    )


def _decode_class_labels(dataset: datasets.Dataset, frame: pd.DataFrame, columns: list[str]) -> None:
    """Replace the integers of `ClassLabel` columns by their names (the spec names classes, not codes)."""
    for column in columns:
        feature = dataset.features.get(column)
        if isinstance(feature, datasets.ClassLabel):
            names = feature.names
            frame[column] = [names[v] if 0 <= v < len(names) else None for v in frame[column].tolist()]


def _encode_groups(spec: DatasetSpec, attribute: str, split: str, frame: pd.DataFrame) -> np.ndarray:
    attr = spec.attribute(attribute)
    codes, unknown = encode_column(frame[attr.column], name_lookup(attr.groups, attr.values))
    if unknown:
        raise ValueError(
            UNKNOWN_GROUP_VALUES.format(
                column=attr.column,
                name=spec.name,
                attribute=attr.name,
                split=split,
                values=describe_values(unknown),
                count=int((codes < 0).sum()),
                declared=_declared(attr.groups, attr.values),
            )
        )
    present = np.unique(codes)
    if len(present) < 2:
        raise ValueError(
            SINGLE_GROUP.format(
                column=attr.column, name=spec.name, group=attr.groups[present[0]], split=split
            )
        )
    return codes


def _checked_texts(spec: DatasetSpec, split: str, values: list[object], rows: np.ndarray) -> list[str]:
    bad = [i for i, v in enumerate(values) if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ValueError(
            NON_TEXT_VALUES.format(
                column=spec.text_column, name=spec.name, count=len(bad), split=split, row=int(rows[bad[0]])
            )
        )
    return values  # type: ignore[return-value]  # every value is a str, checked above


def _declared(names: list[str], values: dict | None) -> object:
    return dict(values) if values is not None else names
