"""Choosing a subset's rows from its split: (label, group) cells, group-balanced draws, a row cap.

Draws use `numpy.random.default_rng(subset.seed)`, cells are visited in a fixed order (the subset's
cells as written, else labels x groups in declaration order) and the chosen rows are returned in
source order, so a spec always selects the same rows in the same order.
"""

from __future__ import annotations

import logging

import numpy as np

from editing_service.data.spec import DatasetSpec
from editing_service.data.table import SplitTable

logger = logging.getLogger(__name__)

EMPTY_CELL = (
    "Subset {subset!r} of dataset {name!r}: cell (label {label!r}, {attribute} {group!r}) has no rows in "
    "split {split!r}."
)
CELL_TOO_SMALL = (
    "Subset {subset!r} of dataset {name!r}: per_cell asks for {per_cell} rows but cell (label {label!r}, "
    "{attribute} {group!r}) has only {count} in split {split!r}."
)


def select_rows(spec: DatasetSpec, subset_name: str, table: SplitTable) -> np.ndarray:
    """Return the positions (int64, ascending) in `table` of the rows of subset `subset_name`.

    Parameters
    ----------
    spec : DatasetSpec
        The spec that declares the subset.
    subset_name : str
        The subset's name.
    table : SplitTable
        The encoded rows of the subset's split.

    Returns
    -------
    numpy.ndarray
        int64 positions into `table`.
    """
    subset = spec.subset(subset_name)
    rng = np.random.default_rng(subset.seed)
    positions = np.arange(len(table), dtype=np.int64)
    if subset.by_cell:
        positions = _select_cells(spec, subset_name, table, rng)
    if subset.max_rows is not None and len(positions) > subset.max_rows:
        positions = np.sort(rng.choice(positions, size=subset.max_rows, replace=False))
    return positions


def _select_cells(
    spec: DatasetSpec, subset_name: str, table: SplitTable, rng: np.random.Generator
) -> np.ndarray:
    subset = spec.subset(subset_name)
    attribute = spec.subset_attribute(subset_name)
    if subset.cells is not None:
        cells = [(spec.labels.index(c.label), attribute.groups.index(c.group)) for c in subset.cells]
    else:
        cells = [(li, gi) for li in range(len(spec.labels)) for gi in range(len(attribute.groups))]
    group_codes = table.groups[attribute.name]
    members = [np.flatnonzero((table.labels == li) & (group_codes == gi)) for li, gi in cells]

    def describe(k: int) -> dict[str, object]:
        label, group = spec.labels[cells[k][0]], attribute.groups[cells[k][1]]
        return {
            "subset": subset_name,
            "name": spec.name,
            "label": label,
            "attribute": attribute.name,
            "group": group,
            "split": table.split,
        }

    for k, rows in enumerate(members):
        if len(rows) == 0:
            raise ValueError(EMPTY_CELL.format(**describe(k)))
    if subset.per_cell is None:
        chosen = members
    else:
        per_cell = min(len(rows) for rows in members) if subset.per_cell == "min" else subset.per_cell
        for k, rows in enumerate(members):
            if len(rows) < per_cell:
                raise ValueError(CELL_TOO_SMALL.format(per_cell=per_cell, count=len(rows), **describe(k)))
        chosen = [rng.choice(rows, size=per_cell, replace=False) for rows in members]
    logger.info(
        "Subset %s of %s: %s",
        subset_name,
        spec.name,
        ", ".join(f"{describe(k)['label']}/{describe(k)['group']} {len(c)}" for k, c in enumerate(chosen)),
    )
    return np.sort(np.concatenate(chosen)).astype(np.int64)
