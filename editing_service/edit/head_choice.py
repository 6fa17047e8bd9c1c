"""Choosing the head's regularisation on the validate split (never on evaluation data).

Every candidate C is fitted on the training features and scored by group-balanced accuracy on the
validate split (the mean of its (class, group) cell accuracies; class-balanced when there are no
groups); ties go to the larger C (the weaker penalty).
"""

from __future__ import annotations

import numpy as np

from editing_service.model.classifier import head_logits
from editing_service.model.head import fit_linear_head
from editing_service.report.metrics import group_accuracy

HEAD_C_GRID: tuple[float, ...] = (1.0, 0.1, 0.01, 0.001)


def choose_head_C(
    *,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    validate_features: np.ndarray,
    validate_labels: np.ndarray,
    validate_groups: np.ndarray | None,
    label_names: list[str],
    grid: tuple[float, ...] = HEAD_C_GRID,
    seed: int = 0,
) -> tuple[float, list[dict[str, float]]]:
    """(the chosen C, the validate score of every candidate)."""
    table = []
    for C in grid:
        head = fit_linear_head(train_features, train_labels, n_classes=len(label_names), C=C, seed=seed)
        logits = head_logits(head, np.asarray(validate_features, dtype=np.float32))
        summary = group_accuracy(y_true=validate_labels, y_pred=logits.argmax(1).numpy(), groups=validate_groups,
                                 label_names=label_names)
        table.append({"C": C, "validate_group_balanced_accuracy": summary["group_balanced_accuracy"]})
    best = max(table, key=lambda row: (round(row["validate_group_balanced_accuracy"], 6), row["C"]))
    return best["C"], table
