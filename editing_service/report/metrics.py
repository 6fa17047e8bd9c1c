"""Accuracy by (class, protected group) cell: overall, group-balanced and worst-group accuracy."""

from __future__ import annotations

import numpy as np

EMPTY_PREDICTIONS = "Cannot score 0 predictions."
LENGTHS_DIFFER = "y_true has {n_true} entries but y_pred has {n_pred}."


def group_accuracy(
    *, y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray | None, label_names: list[str]
) -> dict[str, object]:
    """Accuracy overall and per (class, group) cell; group-balanced = mean of the cell accuracies.

    Without groups, the cells are the classes (balanced accuracy). Empty cells are skipped.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if len(y_true) == 0:
        raise ValueError(EMPTY_PREDICTIONS)
    if len(y_true) != len(y_pred):
        raise ValueError(LENGTHS_DIFFER.format(n_true=len(y_true), n_pred=len(y_pred)))
    group_values = np.asarray(groups) if groups is not None else np.full(len(y_true), "all")
    cells = []
    for label in range(len(label_names)):
        for group in sorted(set(group_values.tolist())):
            mask = (y_true == label) & (group_values == group)
            count = int(mask.sum())
            if count == 0:
                continue
            cells.append({
                "label": label_names[label],
                "group": str(group),
                "count": count,
                "accuracy": float((y_pred[mask] == label).mean()),
            })
    accuracies = [c["accuracy"] for c in cells]
    return {
        "accuracy": float((y_true == y_pred).mean()),
        "group_balanced_accuracy": float(np.mean(accuracies)),
        "worst_group_accuracy": float(np.min(accuracies)),
        "n": len(y_true),
        "cells": cells,
    }
