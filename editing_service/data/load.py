"""Loading a spec's subsets as `TextSplit`s: texts, class indices and group names, with their rows.

Sources are read once per process and kept in memory (keyed by the source and, for local files and
folders, their modification time and size), so several subsets of one spec do not read the data again;
`clear_cache()` empties that memory.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import datasets
import numpy as np

from editing_service.data.select import select_rows
from editing_service.data.sources import read_source, source_fingerprint
from editing_service.data.spec import DatasetSpec
from editing_service.data.splits import ColumnSplits, RatioSplits
from editing_service.data.table import SplitTable, build_split_table, check_columns

logger = logging.getLogger(__name__)

NO_STEREOTYPE = (
    "Protected attribute {attribute!r} of dataset {name!r} declares no stereotype; add "
    "stereotype: {{group: class}} to its entry in the spec."
)
UNKNOWN_SPLIT = "Dataset {name!r} has no split {split!r}; its splits are: {available}."
MISSING_GROUPS = (
    "TextSplit {split!r} has no groups of protected attribute {attribute!r}; it has: {available}."
)
TEXTSPLIT_LENGTHS = "TextSplit {name!r}: {what} has {got} rows but texts has {n}."

_T = TypeVar("_T")


@dataclass(frozen=True, eq=False)
class TextSplit:
    """The rows of one subset, ready for a classifier."""

    name: str  # subset name
    texts: list[str]
    labels: np.ndarray  # int64 [n], index into spec.labels
    groups: dict[str, np.ndarray]  # protected attribute name -> group names (str) [n]
    label_names: list[str]
    dataset: datasets.Dataset  # the selected rows, all source columns

    def __post_init__(self) -> None:
        n = len(self.texts)
        sizes = {"labels": len(self.labels), "dataset": len(self.dataset)}
        sizes.update({f"groups[{k!r}]": len(v) for k, v in self.groups.items()})
        for what, got in sizes.items():
            if got != n:
                raise ValueError(TEXTSPLIT_LENGTHS.format(name=self.name, what=what, got=got, n=n))

    def __len__(self) -> int:
        return len(self.texts)


class _Memo:
    """A small thread-safe least-recently-used memo of loaded sources and split tables."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._items: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...], make: Callable[[], _T]) -> _T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[return-value]
        value = make()  # outside the lock: two threads may both load, the result is the same
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_SOURCES = _Memo()
_TABLES = _Memo()


def clear_cache() -> None:
    """Forget every source and split loaded so far in this process."""
    _SOURCES.clear()
    _TABLES.clear()


def load_split(spec: DatasetSpec, split: str) -> SplitTable:
    """Return the checked, encoded rows of split `split` of `spec` (memoised)."""
    key = (spec.model_dump_json(), source_fingerprint(spec.source), split)
    return _TABLES.get(key, lambda: _build_split(spec, split))


def _build_split(spec: DatasetSpec, split: str) -> SplitTable:
    if split not in spec.splits.split_names:
        # Subsets name known splits (checked when the spec is built); this guards direct calls.
        raise ValueError(UNKNOWN_SPLIT.format(name=spec.name, split=split, available=spec.splits.split_names))
    splits = spec.splits
    if isinstance(splits, ColumnSplits | RatioSplits):
        whole = _SOURCES.get(
            (source_fingerprint(spec.source), None), lambda: read_source(spec.source, dataset_name=spec.name)
        )
        check_columns(spec, list(whole.column_names))
        if isinstance(splits, ColumnSplits):
            rows = splits.assign(whole.select_columns([splits.column]).to_pandas())[split]
        else:
            rows = splits.assign(len(whole))[split]
        return build_split_table(spec, split, whole.select(rows), rows)
    own = splits.source_split(split)
    part = _SOURCES.get(
        (source_fingerprint(spec.source), own),
        lambda: read_source(spec.source, dataset_name=spec.name, split=own),
    )
    return build_split_table(spec, split, part, np.arange(len(part), dtype=np.int64))


def load_subset(spec: DatasetSpec, name: str) -> TextSplit:
    """Load subset `name` of `spec`.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec.
    name : str
        One of `spec.subsets`.

    Returns
    -------
    TextSplit
        The subset's rows, in source order; the same rows in the same order on every call.
    """
    subset = spec.subset(name)
    table = load_split(spec, subset.split)
    positions = select_rows(spec, name, table)
    groups = {
        attribute.name: np.asarray(attribute.groups, dtype=str)[table.groups[attribute.name][positions]]
        for attribute in spec.protected
    }
    logger.info(
        "Loaded subset %s of %s: %d rows from split %s", name, spec.name, len(positions), subset.split
    )
    return TextSplit(
        name=name,
        texts=[table.texts[i] for i in positions],
        labels=table.labels[positions],
        groups=groups,
        label_names=list(spec.labels),
        dataset=table.dataset.select(positions),
    )


def load_role(spec: DatasetSpec, role: str) -> TextSplit:
    """Load the subset that plays `role` ("train", "validate", "evaluate" or "oracle")."""
    return load_subset(spec, spec.role_subset(role))


def stereotype_labels(spec: DatasetSpec, split: TextSplit, attribute: str | None = None) -> np.ndarray:
    """Return, per row, the class index the spec's stereotype gives to the row's group.

    Parameters
    ----------
    spec : DatasetSpec
        The spec whose protected attribute declares a stereotype.
    split : TextSplit
        Rows loaded from that spec.
    attribute : str or None
        The protected attribute; None for the spec's only one.

    Returns
    -------
    numpy.ndarray
        int64 [n]: how often a prediction equals this is the "gender accuracy" of a report.
    """
    attr = spec.attribute(attribute)
    if attr.stereotype is None:
        raise ValueError(NO_STEREOTYPE.format(attribute=attr.name, name=spec.name))
    if attr.name not in split.groups:
        raise ValueError(
            MISSING_GROUPS.format(split=split.name, attribute=attr.name, available=list(split.groups))
        )
    groups = split.groups[attr.name]
    out = np.full(len(groups), -1, dtype=np.int64)
    for group, label in attr.stereotype.items():
        out[groups == group] = spec.labels.index(label)
    return out
