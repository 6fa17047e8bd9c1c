"""Accuracy by (class, protected group) cell: overall, group-balanced and worst-group accuracy.

A cell is one (true class, group) pair. Group-balanced accuracy is the unweighted mean of the cell
accuracies and worst-group accuracy the lowest of them. Both look at the intersection of class and group
on purpose: a single protected column hides the problem (accuracy by gender can be 0.857 vs 0.859 while
the worst (class, gender) cell is 0.715). The accuracy of cell (c, g) is also the true-positive rate of
class c within group g, which the fairness gaps reuse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EMPTY_PREDICTIONS = "Cannot score 0 predictions."
LENGTHS_DIFFER = "y_true has {n_true} entries but y_pred has {n_pred}."
GROUPS_LENGTH_DIFFER = "groups has {n_groups} entries but y_true has {n_true}."
LABEL_OUT_OF_RANGE = "{what} holds class index {value}, outside 0..{last} (label_names has {n} names)."
NOT_INTEGER_LABELS = "{what} must hold integer class indices, got dtype {dtype}."


def check_labels(values: Sequence[int] | np.ndarray, *, label_names: Sequence[str], what: str) -> np.ndarray:
    """Return `values` as an int64 array of class indices, refusing anything outside `label_names`."""
    array = np.asarray(values)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(NOT_INTEGER_LABELS.format(what=what, dtype=array.dtype))
    array = array.astype(np.int64).reshape(-1)
    bad = array[(array < 0) | (array >= len(label_names))]
    if bad.size:
        raise ValueError(
            LABEL_OUT_OF_RANGE.format(
                what=what, value=int(bad[0]), last=len(label_names) - 1, n=len(label_names)
            )
        )
    return array


def group_names(groups: np.ndarray) -> list[str]:
    """The groups present, sorted, as strings (the fixed order every table and gap uses)."""
    return sorted({str(g) for g in groups.tolist()})


def group_accuracy(
    *,
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None,
    label_names: Sequence[str],
) -> dict[str, object]:
    """Accuracy overall and per (class, group) cell.

    Parameters
    ----------
    y_true, y_pred : array of int [n]
        Class indices into `label_names`.
    groups : array of str [n] or None
        The protected group of each row; None makes the cells the classes (balanced accuracy).
    label_names : list of str
        Class names in class-index order.

    Returns
    -------
    dict
        accuracy, group_balanced_accuracy (mean of the non-empty cells), worst_group_accuracy,
        worst_group ({label, group}, the first lowest cell in (class, group) order), n, cells
        ([{label, group, count, correct, accuracy}], non-empty cells only), empty_cells
        ([{label, group}]) and by_group ([{group, count, accuracy}], the single-attribute view).
    """
    y_true = check_labels(y_true, label_names=label_names, what="y_true")
    y_pred = check_labels(y_pred, label_names=label_names, what="y_pred")
    if len(y_true) == 0:
        raise ValueError(EMPTY_PREDICTIONS)
    if len(y_true) != len(y_pred):
        raise ValueError(LENGTHS_DIFFER.format(n_true=len(y_true), n_pred=len(y_pred)))
    group_values = np.asarray(groups).astype(str) if groups is not None else np.full(len(y_true), "all")
    if len(group_values) != len(y_true):
        raise ValueError(GROUPS_LENGTH_DIFFER.format(n_groups=len(group_values), n_true=len(y_true)))
    names = group_names(group_values)
    correct = y_true == y_pred
    cells: list[dict[str, object]] = []
    empty: list[dict[str, str]] = []
    for label, label_name in enumerate(label_names):
        for group in names:
            mask = (y_true == label) & (group_values == group)
            count = int(mask.sum())
            if count == 0:
                empty.append({"label": label_name, "group": group})
                continue
            hits = int(correct[mask].sum())
            cells.append(
                {
                    "label": label_name,
                    "group": group,
                    "count": count,
                    "correct": hits,
                    "accuracy": hits / count,
                }
            )
    accuracies = np.array([c["accuracy"] for c in cells], dtype=float)
    worst = cells[int(np.argmin(accuracies))]
    by_group = [
        {
            "group": g,
            "count": int((group_values == g).sum()),
            "accuracy": float(correct[group_values == g].mean()),
        }
        for g in names
    ]
    return {
        "accuracy": float(correct.mean()),
        "group_balanced_accuracy": float(accuracies.mean()),
        "worst_group_accuracy": float(accuracies.min()),
        "worst_group": {"label": worst["label"], "group": worst["group"]},
        "n": len(y_true),
        "cells": cells,
        "empty_cells": empty,
        "by_group": by_group,
    }
