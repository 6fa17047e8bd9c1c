"""Mean and range of every row's headline metrics over reports of the same run repeated with other seeds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from editing_service.report.schema import HEADLINE_METRICS, Report, SeedSummary, Spread

LENGTHS_DIFFER = "{reports} reports, {seeds} seeds and {runs} run folders: give one of each per seed."


def summarise_seeds(reports: Sequence[Report], seeds: Sequence[int], runs: Sequence[str]) -> SeedSummary:
    """Per row (those present in every report) and headline metric: mean, min, max and the values."""
    if not (len(reports) == len(seeds) == len(runs)):
        raise ValueError(LENGTHS_DIFFER.format(reports=len(reports), seeds=len(seeds), runs=len(runs)))
    names = [r.name for r in reports[0].rows if all(rep.row(r.name) is not None for rep in reports)]
    rows: dict[str, dict[str, Spread]] = {}
    for name in names:
        spread: dict[str, Spread] = {}
        for metric in HEADLINE_METRICS:
            values = [rep.row(name).metric(metric) for rep in reports]  # type: ignore[union-attr]
            if any(v is None for v in values):
                continue
            array = np.asarray(values, dtype=np.float64)
            spread[metric] = Spread(mean=float(array.mean()), min=float(array.min()), max=float(array.max()),
                                    values=[float(v) for v in array])
        rows[name] = spread
    return SeedSummary(seeds=list(seeds), rows=rows, runs=list(runs))
