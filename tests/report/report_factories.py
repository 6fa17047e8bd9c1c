"""Hand-built predictions for report tests: each (class, group) cell with a chosen count and hits."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from editing_service.edit.rows import registered_rows
from editing_service.report import Report, Row, build_report, evaluate_row

LABELS = ["nurse", "surgeon"]
STEREOTYPE = {"F": 0, "M": 1}  # F -> nurse, M -> surgeon

# The tiny example the expected numbers in test_rows.py are computed from by hand.
TINY = {("nurse", "F"): (4, 4), ("nurse", "M"): (2, 1), ("surgeon", "F"): (2, 0), ("surgeon", "M"): (4, 3)}


def make_cells(
    cells: Mapping[tuple[str, str], tuple[int, int]], labels: list[str] = LABELS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, y_pred, groups): per cell `count` rows of which the first `correct` are right.

    A wrong prediction is the next class (cyclically), so for two classes it is the other one.
    """
    y_true, y_pred, groups = [], [], []
    for (label, group), (count, correct) in cells.items():
        k = labels.index(label)
        y_true += [k] * count
        y_pred += [k] * correct + [(k + 1) % len(labels)] * (count - correct)
        groups += [group] * count
    return np.array(y_true), np.array(y_pred), np.array(groups)


def stereotype_of(groups: np.ndarray) -> np.ndarray:
    return np.array([STEREOTYPE[g] for g in groups])


REGISTERED = {r.name: r for r in registered_rows()}  # titles and roles as the pipeline gives them


def row_from_cells(name: str, cells: Mapping[tuple[str, str], tuple[int, int]], **kwargs) -> Row:
    """A report row from a cell table, stereotype included, no representation (role from the name)."""
    y_true, y_pred, groups = make_cells(cells)
    known = REGISTERED.get(name)
    options = {"n_boot": 50, "seed": 0, "role": known.role if known else "baseline",
               "title": known.title if known else "", **kwargs}
    return evaluate_row(
        name=name,
        description=f"{name} row",
        y_true=y_true,
        y_pred=y_pred,
        label_names=LABELS,
        groups={"gender": groups},
        attribute="gender",
        stereotype=stereotype_of(groups),
        **options,
    )


def balanced_cells(accuracy: Mapping[tuple[str, str], float], per_cell: int = 100) -> dict:
    """Cells of `per_cell` rows each with the given accuracies."""
    return {cell: (per_cell, round(acc * per_cell)) for cell, acc in accuracy.items()}


DATASET = {
    "name": "biasbios_surgeon_nurse",
    "subsets": {"train": "train_biased", "evaluate": "test"},
    "sha256": "fca18329",
}
MODEL = {"base_model": "sentence-transformers/all-MiniLM-L6-v2", "sha256": "ab12", "classifier_kind": "probe"}
FLAGS = [
    {
        "site": "layer0.resid",
        "feature": 12,
        "label": "<script>alert(1)</script>",
        "who": "ana",
        "why": "fires on she/her",
        "source": "person",
    },
    {
        "site": "layer1.resid",
        "feature": 7,
        "label": "mr / mrs",
        "who": "suggester",
        "rationale": "80% of its mass on gendered words",
        "source": "lexicon",
    },
]


def report_of(rows: list[Row], **changes) -> Report:
    """A report of `rows` with fixed provenance, flags and date; `changes` override build_report arguments."""
    kwargs = {
        "title": "Surgeon vs nurse",
        "dataset": DATASET,
        "model": MODEL,
        "rows": rows,
        "flags": FLAGS,
        "sae": {"architecture": "topk", "d_sae": 2048},
        "retrain": {"seed": 0},
        "flag_selection_subset": "validate",
        "created_at": "2025-01-01T00:00:00+00:00",
        **changes,
    }
    return build_report(**kwargs)
