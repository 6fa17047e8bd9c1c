"""evaluate_row against numbers computed by hand on a tiny example, and its refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from report_factories import LABELS, TINY, make_cells, row_from_cells, stereotype_of

from editing_service.report import Row, evaluate_row, group_accuracy
from editing_service.report.bootstrap import BAD_N_BOOT, UNKNOWN_CI_METHOD
from editing_service.report.fairness import BAD_GAP_ORDER
from editing_service.report.metrics import LABEL_OUT_OF_RANGE
from editing_service.report.rows import (
    EMPTY_CELL_WARNING,
    LENGTH_MISMATCH,
    SMALL_CELL_WARNING,
    STEREOTYPE_OUT_OF_RANGE,
    UNKNOWN_ATTRIBUTE,
)


@pytest.fixture(scope="module")
def tiny() -> dict:
    return row_from_cells("original", TINY)


def test_headline_accuracies_match_hand_computation(tiny) -> None:
    # cells: (nurse,F) 4/4, (nurse,M) 1/2, (surgeon,F) 0/2, (surgeon,M) 3/4
    assert tiny.n == 12
    assert tiny.accuracy == pytest.approx(8 / 12)
    assert tiny.group_balanced_accuracy == pytest.approx((1.0 + 0.5 + 0.0 + 0.75) / 4)
    assert tiny.worst_group_accuracy == 0.0
    assert tiny.worst_group.model_dump() == {"label": "surgeon", "group": "F"}


def test_cells_have_counts_accuracies_and_intervals(tiny) -> None:
    got = {(c.label, c.group): (c.count, c.correct, c.accuracy) for c in tiny.cells}
    assert got == {
        ("nurse", "F"): (4, 4, 1.0),
        ("nurse", "M"): (2, 1, 0.5),
        ("surgeon", "F"): (2, 0, 0.0),
        ("surgeon", "M"): (4, 3, 0.75),
    }
    for cell in tiny.cells:
        for key in ("ci", "wilson_ci"):
            low, high = getattr(cell, key)
            assert 0.0 <= low <= cell.accuracy <= high <= 1.0
    perfect = next(c for c in tiny.cells if c.accuracy == 1.0)
    assert perfect.ci == [1.0, 1.0]  # the percentile bootstrap collapses ...
    assert perfect.wilson_ci[0] < 0.6  # ... the Wilson interval stays honest on 4 rows


def test_protected_attribute_accuracy_counts_stereotyped_predictions(tiny) -> None:
    # prediction == stereotype (F->nurse, M->surgeon): 4 + 1 + 2 + 3 of 12 rows; per (class, group) cell
    # 4/4, 1/2, 2/2, 3/4, whose mean is the group-balanced figure (Marks et al. 2024).
    assert tiny.protected_attribute_accuracy_rows == pytest.approx(10 / 12)
    assert tiny.protected_attribute_accuracy == pytest.approx((1 + 0.5 + 1 + 0.75) / 4)


def test_fairness_gaps_match_exact_computation(tiny) -> None:
    y_true, y_pred, groups = make_cells(TINY)
    selected = y_pred == 1  # positive class: surgeon
    rate = {g: selected[groups == g].mean() for g in ("F", "M")}
    fair = tiny.fairness
    assert fair.demographic_parity_difference == pytest.approx(abs(rate["F"] - rate["M"]))
    assert fair.demographic_parity_difference == pytest.approx(4 / 6)
    # TPR(surgeon): F 0/2, M 3/4; FPR(surgeon): F 0/4, M 1/2
    assert fair.equal_opportunity_difference == pytest.approx(0.75)
    assert fair.equalized_odds_difference == pytest.approx(0.75)
    gap = fair.tpr_gap
    assert gap.order == ["F", "M"]
    assert gap.per_class == pytest.approx({"nurse": 1.0 - 0.5, "surgeon": 0.0 - 0.75})
    assert gap.rms == pytest.approx(math.sqrt((0.5**2 + 0.75**2) / 2))
    assert fair.four_fifths.per_class == pytest.approx({"nurse": (2 / 6) / 1.0, "surgeon": 0.0})
    assert fair.four_fifths.violated is True


def test_gap_order_reverses_the_tpr_gap() -> None:
    row = row_from_cells("original", TINY, gap_order=["M", "F"])
    assert row.fairness.tpr_gap.per_class["surgeon"] == pytest.approx(0.75)
    with pytest.raises(ValueError) as err:
        row_from_cells("original", TINY, gap_order=["F", "X"])
    assert str(err.value) == BAD_GAP_ORDER.format(available=["F", "M"], order=["F", "X"])


def test_row_is_json_serialisable_and_deterministic(tiny) -> None:
    json.dumps(json.loads(tiny.model_dump_json()), allow_nan=False)
    assert Row.model_validate_json(tiny.model_dump_json()) == tiny
    assert row_from_cells("original", TINY) == tiny
    assert row_from_cells("original", TINY, seed=1).intervals != tiny.intervals


def test_single_attribute_trap_is_caught_by_worst_group() -> None:
    # accuracy by gender 0.857 vs 0.859, worst (label, gender) cell 0.715 (the fairness-report note)
    cells = {
        ("nurse", "F"): (500, 457),
        ("surgeon", "F"): (200, 143),
        ("nurse", "M"): (200, 180),
        ("surgeon", "M"): (500, 421),
    }
    row = row_from_cells("original", cells)
    by_group = {g.group: g.accuracy for g in row.by_group}
    assert by_group["F"] == pytest.approx(0.857, abs=1e-3)
    assert by_group["M"] == pytest.approx(0.859, abs=1e-3)
    assert row.by_group_gap < 0.01
    assert row.worst_group_accuracy == pytest.approx(0.715)
    assert row.worst_group.model_dump() == {"label": "surgeon", "group": "F"}


def test_small_and_empty_cells_are_warned_about() -> None:
    cells = {("nurse", "F"): (40, 40), ("nurse", "M"): (12, 6), ("surgeon", "M"): (40, 30)}
    row = row_from_cells("original", cells)
    assert [c.model_dump() for c in row.empty_cells] == [{"label": "surgeon", "group": "F"}]
    assert SMALL_CELL_WARNING.format(label="nurse", group="M", count=12, minimum=30) in row.warnings
    assert EMPTY_CELL_WARNING.format(label="surgeon", group="F") in row.warnings
    assert len([w for w in row.warnings if "only" in w]) == 1  # the 40-row cells are fine
    # the empty cell is left out of the group-balanced mean, not counted as 0
    assert row.group_balanced_accuracy == pytest.approx((1.0 + 0.5 + 0.75) / 3)
    assert row.fairness.equalized_odds_difference is None  # F has no surgeons: TPR undefined


def test_multiclass_gaps_are_the_max_over_one_vs_rest_classes() -> None:
    labels = ["nurse", "surgeon", "professor"]
    cells = {(lab, g): (10, 10 - i - (g == "M") * 3) for i, lab in enumerate(labels) for g in ("F", "M")}
    y_true, y_pred, groups = make_cells(cells, labels)
    row = evaluate_row(
        name="original",
        description="",
        y_true=y_true,
        y_pred=y_pred,
        label_names=labels,
        groups={"gender": groups},
        attribute="gender",
        n_boot=20,
    )
    exact = max(
        abs((y_pred[groups == "F"] == k).mean() - (y_pred[groups == "M"] == k).mean()) for k in range(3)
    )
    assert row.fairness.aggregation == "max over one-vs-rest classes"
    assert row.fairness.demographic_parity_difference == pytest.approx(exact)
    assert row.protected_attribute_accuracy is None


def test_fairlearn_bootstrap_gives_cell_intervals() -> None:
    row = row_from_cells("original", TINY, ci_method="fairlearn", n_boot=10)
    assert row.bootstrap.method == "fairlearn"
    assert all(c.ci[0] <= c.ci[1] for c in row.cells)
    assert row.intervals.group_balanced_accuracy is None


def test_group_accuracy_keeps_its_contract() -> None:
    y_true, y_pred, groups = make_cells(TINY)
    out = group_accuracy(y_true=y_true, y_pred=y_pred, groups=groups, label_names=LABELS)
    assert {"accuracy", "group_balanced_accuracy", "worst_group_accuracy", "n", "cells"} <= set(out)
    no_groups = group_accuracy(y_true=y_true, y_pred=y_pred, groups=None, label_names=LABELS)
    assert no_groups["group_balanced_accuracy"] == pytest.approx((5 / 6 + 3 / 6) / 2)  # balanced accuracy


def _call(**changes):
    y_true, y_pred, groups = make_cells(TINY)
    kwargs = {
        "name": "original",
        "description": "",
        "y_true": y_true,
        "y_pred": y_pred,
        "label_names": LABELS,
        "groups": {"gender": groups},
        "attribute": "gender",
        "stereotype": stereotype_of(groups),
        "n_boot": 10,
        **changes,
    }
    return evaluate_row(**kwargs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attribute": "race"}, UNKNOWN_ATTRIBUTE.format(attribute="race", available=["gender"])),
        ({"y_pred": np.zeros(5, dtype=int)}, LENGTH_MISMATCH.format(what="y_pred", got=5, n=12)),
        ({"stereotype": np.zeros(3, dtype=int)}, LENGTH_MISMATCH.format(what="stereotype", got=3, n=12)),
        ({"representation": np.zeros((4, 2))}, LENGTH_MISMATCH.format(what="representation", got=4, n=12)),
        ({"y_true": np.full(12, 2)}, LABEL_OUT_OF_RANGE.format(what="y_true", value=2, last=1, n=2)),
        ({"stereotype": np.full(12, 5)}, STEREOTYPE_OUT_OF_RANGE.format(value=5, last=1)),
        ({"n_boot": -1}, BAD_N_BOOT.format(n_boot=-1)),
        (
            {"ci_method": "jackknife"},
            UNKNOWN_CI_METHOD.format(method="jackknife", available=["cell", "fairlearn"]),
        ),
    ],
)
def test_bad_inputs_are_refused_with_a_precise_message(changes, message) -> None:
    with pytest.raises(ValueError) as err:
        _call(**changes)
    assert str(err.value) == message


def test_evaluate_row_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        evaluate_row("original")  # type: ignore[misc]
