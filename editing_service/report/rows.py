"""One row of the comparison table: every bias and accuracy number of one model on the evaluation split.

`evaluate_row` takes plain arrays (class indices, group names, an optional stereotype and pooled
representation) and returns a typed `Row` (editing_service.report.schema); `build_report` puts several
rows side by side.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np

from editing_service.report.bootstrap import (
    CIMethod,
    cell_bootstrap,
    check_bootstrap,
    fairlearn_cell_intervals,
    wilson_interval,
)
from editing_service.report.fairness import fairness_gaps, protected_attribute_accuracy
from editing_service.report.leakage import ProbeSettings, leakage_probes
from editing_service.report.metrics import check_labels, group_accuracy
from editing_service.report.schema import Row, RowRole

logger = logging.getLogger(__name__)

SMALL_CELL = 30  # cells with fewer rows than this get a warning
EMPTY_NAME = "A row needs a non-empty name."
TOO_FEW_LABELS = "label_names must name at least 2 classes, got {label_names!r}."
UNKNOWN_ATTRIBUTE = "Unknown protected attribute {attribute!r}; groups has: {available}."
LENGTH_MISMATCH = "{what} has {got} entries but y_true has {n}."
STEREOTYPE_OUT_OF_RANGE = "stereotype holds {value}; use a class index in 0..{last}, or -1 for no stereotype."
SMALL_CELL_WARNING = (
    "Cell ({label}, {group}) has only {count} rows (< {minimum}): its accuracy and interval are unreliable."
)
EMPTY_CELL_WARNING = (
    "Cell ({label}, {group}) is empty: no evaluation rows, so group-balanced and worst-group accuracy "
    "leave it out."
)


def _check_lengths(n: int, **arrays: np.ndarray | None) -> None:
    for what, array in arrays.items():
        if array is not None and len(array) != n:
            raise ValueError(LENGTH_MISMATCH.format(what=what, got=len(array), n=n))


def _intervals(
    *,
    summary: dict,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    attribute: str,
    label_names: Sequence[str],
    n_boot: int,
    seed: int,
    method: CIMethod,
    quantiles: Sequence[float],
) -> dict[str, object]:
    """Attach a `ci` to every cell; return the headline intervals (None where the method has none, and
    everywhere when `n_boot` is 0: no bootstrap)."""
    cells = summary["cells"]
    for cell in cells:
        cell["wilson_ci"] = wilson_interval(correct=cell["correct"], count=cell["count"], quantiles=quantiles)
    if n_boot == 0:
        return dict.fromkeys(("accuracy", "group_balanced_accuracy", "worst_group_accuracy"))
    if method == "cell":
        boot = cell_bootstrap(cells=cells, n_boot=n_boot, seed=seed, quantiles=quantiles)
        for cell, interval in zip(cells, boot["cells"], strict=True):
            cell["ci"] = interval
        return {k: boot[k] for k in ("accuracy", "group_balanced_accuracy", "worst_group_accuracy")}
    by_cell = fairlearn_cell_intervals(
        y_true=y_true,
        y_pred=y_pred,
        groups=groups,
        attribute=attribute,
        n_boot=n_boot,
        seed=seed,
        quantiles=quantiles,
    )
    for cell in cells:
        cell["ci"] = by_cell[(list(label_names).index(cell["label"]), cell["group"])]
    return {"accuracy": None, "group_balanced_accuracy": None, "worst_group_accuracy": None}


def evaluate_row(
    *,
    name: str,
    description: str,
    title: str = "",
    role: RowRole = "baseline",
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    label_names: Sequence[str],
    groups: Mapping[str, Sequence[str] | np.ndarray],
    attribute: str,
    stereotype: Sequence[int] | np.ndarray | None = None,
    representation: np.ndarray | None = None,
    n_boot: int = 200,
    seed: int = 0,
    ci_method: CIMethod = "cell",
    ci_quantiles: Sequence[float] = (0.025, 0.975),
    min_cell_count: int = SMALL_CELL,
    gap_order: Sequence[str] | None = None,
    probe_settings: ProbeSettings | None = None,
) -> Row:
    """Score one model's predictions on the evaluation split (see the module docstring of each part).

    `y_true`, `y_pred` and `stereotype` are class indices [n] (`stereotype` -1 where a group has none);
    `groups[attribute]` the group names [n]; `representation` [n, d] what the head reads, for the
    leakage probes. `gap_order` names the two groups of the TPR gap (first minus second; default
    sorted, e.g. F - M). `title` (the row as a phrase) and `role` (reference, edit or baseline) say
    what the row is to the comparison.
    """
    if not name:
        raise ValueError(EMPTY_NAME)
    if len(label_names) < 2:
        raise ValueError(TOO_FEW_LABELS.format(label_names=list(label_names)))
    if attribute not in groups:
        raise ValueError(UNKNOWN_ATTRIBUTE.format(attribute=attribute, available=sorted(groups)))
    check_bootstrap(method=ci_method, n_boot=n_boot, quantiles=ci_quantiles)
    started = time.perf_counter()
    y_true = check_labels(y_true, label_names=label_names, what="y_true")
    y_pred = check_labels(y_pred, label_names=label_names, what="y_pred")
    group_values = np.asarray(groups[attribute]).astype(str)
    _check_lengths(
        len(y_true),
        y_pred=y_pred,
        **{f"groups[{attribute!r}]": group_values},
        stereotype=stereotype,
        representation=None if representation is None else np.asarray(representation),
    )
    if stereotype is not None:
        stereotype = np.asarray(stereotype, dtype=np.int64).reshape(-1)
        bad = stereotype[(stereotype < -1) | (stereotype >= len(label_names))]
        if bad.size:
            raise ValueError(STEREOTYPE_OUT_OF_RANGE.format(value=int(bad[0]), last=len(label_names) - 1))
    summary = group_accuracy(y_true=y_true, y_pred=y_pred, groups=group_values, label_names=label_names)
    intervals = _intervals(
        summary=summary,
        y_true=y_true,
        y_pred=y_pred,
        groups=group_values,
        attribute=attribute,
        label_names=label_names,
        n_boot=n_boot,
        seed=seed,
        method=ci_method,
        quantiles=ci_quantiles,
    )
    warnings = [
        SMALL_CELL_WARNING.format(
            label=c["label"], group=c["group"], count=c["count"], minimum=min_cell_count
        )
        for c in summary["cells"]
        if c["count"] < min_cell_count
    ]
    warnings += [EMPTY_CELL_WARNING.format(**c) for c in summary["empty_cells"]]
    gaps, notes = fairness_gaps(
        y_true=y_true, y_pred=y_pred, groups=group_values, label_names=label_names, gap_order=gap_order
    )
    warnings += notes
    leakage = None
    if representation is not None:
        leakage, notes = leakage_probes(
            representation=np.asarray(representation), groups=group_values, seed=seed, settings=probe_settings
        )
        warnings += notes
    by_group = summary["by_group"]
    row = {
        "name": name,
        "title": title,
        "description": description,
        "role": role,
        "attribute": attribute,
        "label_names": list(label_names),
        "groups": sorted({g["group"] for g in by_group}),
        "n": summary["n"],
        "accuracy": summary["accuracy"],
        "group_balanced_accuracy": summary["group_balanced_accuracy"],
        "worst_group_accuracy": summary["worst_group_accuracy"],
        "worst_group": summary["worst_group"],
        "intervals": intervals,
        # group-balanced (mean over (class, group) cells), and over rows as they come
        "protected_attribute_accuracy": (
            None if stereotype is None else protected_attribute_accuracy(
                y_pred=y_pred, stereotype=stereotype,
                cells=np.char.add(np.asarray(y_true).astype(str), np.char.add("|", np.asarray(groups[attribute]).astype(str))),
            )
        ),
        "protected_attribute_accuracy_rows": (
            None if stereotype is None else protected_attribute_accuracy(y_pred=y_pred, stereotype=stereotype)
        ),
        "cells": summary["cells"],
        "empty_cells": summary["empty_cells"],
        "min_cell_count": min_cell_count,
        "by_group": by_group,
        "by_group_gap": max(g["accuracy"] for g in by_group) - min(g["accuracy"] for g in by_group),
        "fairness": gaps,
        "leakage": leakage,
        "bootstrap": {"method": ci_method, "n_boot": n_boot, "seed": seed, "quantiles": list(ci_quantiles)},
        "warnings": warnings,
    }
    logger.info("row %s scored in %.2f s", name, time.perf_counter() - started)
    return Row.model_validate(row)
