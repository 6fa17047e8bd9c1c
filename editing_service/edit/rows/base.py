"""The row registry: every row of the report is one `ReportRow` object, registered from its own file.

A row has a name, a title (how findings name it), a role (reference, edit or baseline: what the
comparison does with it), a one-line summary for settings and docs, and `run(context)`, which edits the
classifier and retrains a head as the row needs and returns what the head reads on the evaluation split,
the head, and a sentence saying what was actually done. A row that cannot run here raises `RowSkipped`
with the reason, which the report shows. The settings (`edit.baselines`), the report, the HTML page,
the model card, the CLI and the API all read this one list.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from torch import nn

from editing_service.report.schema import RowRole

if TYPE_CHECKING:
    from editing_service.edit.rows.context import RowContext

DUPLICATE_ROW = "A report row named {name!r} is already registered."
UNKNOWN_ROW = "Unknown report row {name!r}; the optional rows are: {known}."


class RowSkipped(Exception):
    """Raised by `ReportRow.run` when the row cannot run on this data or run; args[0] says why."""


@dataclass
class RowOutput:
    """What a row hands to the report: the evaluation split's head features, the head, what was done."""

    features: np.ndarray  # [n_evaluate, d]
    head: nn.Linear
    description: str


class ReportRow(ABC):
    """One row of the report (see the module docstring)."""

    name: ClassVar[str]
    title: ClassVar[str]
    role: ClassVar[RowRole]
    summary: ClassVar[str]
    order: ClassVar[int]  # position in every report
    optional: ClassVar[bool] = True  # may be switched off in `edit.baselines`
    on_by_default: ClassVar[bool] = True
    needs_sites: ClassVar[tuple[str, ...]] = ()  # extra SAE sites discovery must train for this row

    @abstractmethod
    def run(self, ctx: RowContext) -> RowOutput:
        """Edit, retrain and read the evaluation split as this row needs (raise RowSkipped if it cannot)."""


_ROWS: dict[str, ReportRow] = {}


def register(row_class: type[ReportRow]) -> type[ReportRow]:
    """Class decorator: add one row to the registry (refuses a name taken)."""
    if row_class.name in _ROWS:
        raise ValueError(DUPLICATE_ROW.format(name=row_class.name))
    _ROWS[row_class.name] = row_class()
    return row_class


def unregister(name: str) -> None:
    """Remove a row (for tests and plug-ins that replace one)."""
    _ROWS.pop(name, None)


def registered_rows() -> list[ReportRow]:
    """Every registered row, in report order."""
    return sorted(_ROWS.values(), key=lambda r: (r.order, r.name))


def optional_row_names() -> list[str]:
    return [r.name for r in registered_rows() if r.optional]


def default_row_names() -> list[str]:
    """The optional rows a run has unless its settings say otherwise."""
    return [r.name for r in registered_rows() if r.optional and r.on_by_default]


def check_row_names(names: list[str]) -> list[str]:
    """Refuse a name that is not a registered optional row, naming the known ones."""
    known = optional_row_names()
    for name in names:
        if name not in known:
            raise ValueError(UNKNOWN_ROW.format(name=name, known=known))
    return names


def rows_to_run(names: list[str]) -> list[ReportRow]:
    """The fixed rows and the optional rows named in `names`, in report order."""
    chosen = set(names)
    return [r for r in registered_rows() if not r.optional or r.name in chosen]


def sites_needed(names: list[str]) -> list[str]:
    """Extra SAE sites the rows named in `names` need, in order, without repeats."""
    return list(dict.fromkeys(s for r in rows_to_run(names) for s in r.needs_sites))
