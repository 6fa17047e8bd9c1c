"""How a dataset's rows are divided into named splits.

Three kinds, told apart by `kind`:

- `column`: a column's values name the split of each row (the shipped CSV's `split` column);
- `ratio`: a seeded random partition of all rows by the given fractions (deterministic);
- `source`: the source's own splits (a hub dataset's train/dev/test, or a saved DatasetDict).

Rows of the `column` kind whose value names no declared split belong to no split and are never used.
Row indices within a split keep the source order.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from editing_service.data.values import RawValue, check_names, encode_column, fill_names, name_lookup

RATIOS_SUM = "Split ratios must sum to 1, got {total:g} ({ratios})."
RATIOS_EMPTY = "Split ratios must name at least one split."


class _SplitsBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def split_names(self) -> list[str]:
        """The declared split names, in order."""
        raise NotImplementedError


class ColumnSplits(_SplitsBase):
    """Splits named by the values of one column."""

    kind: Literal["column"] = "column"
    column: str
    names: list[str]  # split names, in order; may be left out when `values` is given
    values: dict[str, RawValue] | None = None  # split name -> raw value in the column (default: the name)

    @model_validator(mode="before")
    @classmethod
    def _fill_names(cls, data: object) -> object:
        return fill_names(data)

    @model_validator(mode="after")
    def _check(self) -> ColumnSplits:
        check_names(self.names, self.values, "splits")
        return self

    @property
    def split_names(self) -> list[str]:
        return list(self.names)

    def assign(self, table: pd.DataFrame) -> dict[str, np.ndarray]:
        """Return, per split name, the row indices (int64, ascending) of `table` in that split."""
        names = self.split_names
        codes, _ = encode_column(table[self.column], name_lookup(names, self.values))
        return {name: np.flatnonzero(codes == i).astype(np.int64) for i, name in enumerate(names)}


class RatioSplits(_SplitsBase):
    """A seeded random partition of the rows, by fraction."""

    kind: Literal["ratio"] = "ratio"
    ratios: dict[str, Annotated[float, Field(gt=0, le=1)]]  # split name -> fraction; fractions sum to 1
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> RatioSplits:
        if not self.ratios:
            raise ValueError(RATIOS_EMPTY)
        total = sum(self.ratios.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(RATIOS_SUM.format(total=total, ratios=self.ratios))
        return self

    @property
    def split_names(self) -> list[str]:
        return list(self.ratios)

    def assign(self, n_rows: int) -> dict[str, np.ndarray]:
        """Return, per split name, the row indices (int64, ascending) of `n_rows` rows in that split.

        The partition depends only on `n_rows`, the ratios and the seed: a permutation of the rows is cut
        at the rounded cumulative fractions, so the splits are disjoint and cover every row.
        """
        order = np.random.default_rng(self.seed).permutation(n_rows)
        bounds = np.rint(np.cumsum(list(self.ratios.values())) * n_rows).astype(np.int64)
        bounds[-1] = n_rows
        starts = np.concatenate([[0], bounds[:-1]])
        return {
            name: np.sort(order[start:stop]).astype(np.int64)
            for name, start, stop in zip(self.ratios, starts, bounds, strict=True)
        }


class SourceSplits(_SplitsBase):
    """The source's own splits (hub dataset or saved DatasetDict)."""

    kind: Literal["source"] = "source"
    names: list[str]  # split names, in order; may be left out when `values` is given
    values: dict[str, str] | None = None  # split name -> the source's split name (e.g. validate: dev)

    @model_validator(mode="before")
    @classmethod
    def _fill_names(cls, data: object) -> object:
        return fill_names(data)

    @model_validator(mode="after")
    def _check(self) -> SourceSplits:
        check_names(self.names, self.values, "splits")
        return self

    @property
    def split_names(self) -> list[str]:
        return list(self.names)

    def source_split(self, name: str) -> str:
        """The source's own name of split `name`."""
        return self.values[name] if self.values is not None else name


Splits = Annotated[ColumnSplits | RatioSplits | SourceSplits, Field(discriminator="kind")]
