"""The budget curve's normalised score and the seed summary, against numbers computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from report_factories import balanced_cells, report_of, row_from_cells

from editing_service.circuit import NodeScores
from editing_service.edit.budget import rank_flagged
from editing_service.report.budget import budget_curve, budget_sizes, scr_score
from editing_service.report.seeds import LENGTHS_DIFFER, summarise_seeds

CELLS = [("nurse", "F"), ("nurse", "M"), ("surgeon", "F"), ("surgeon", "M")]


def test_scr_score_is_the_share_of_the_gap_to_the_oracle_closed() -> None:
    assert scr_score(0.70, base=0.60, oracle=0.90) == pytest.approx(0.10 / 0.30)
    assert scr_score(0.90, base=0.60, oracle=0.90) == pytest.approx(1.0)
    assert scr_score(0.55, base=0.60, oracle=0.90) == pytest.approx(-0.05 / 0.30)
    assert scr_score(0.70, base=0.60, oracle=None) is None
    assert scr_score(0.70, base=0.60, oracle=0.60) is None  # no gap to close


def test_budget_sizes_stop_at_every_flag() -> None:
    assert budget_sizes(13) == [2, 5, 10, 13]
    assert budget_sizes(100) == [2, 5, 10, 20, 50, 100]
    assert budget_sizes(1) == [1]
    assert budget_sizes(0) == []


def test_budget_curve_scores_both_heads() -> None:
    curve = budget_curve([(2, ["a/1", "b/2"], 0.62, 0.80), (3, ["a/1", "b/2", "a/0"], 0.66, None)],
                         base=0.60, oracle=0.90)
    assert [p.score for p in curve.points] == pytest.approx([0.02 / 0.30, 0.06 / 0.30])
    assert curve.points[0].score_retrained == pytest.approx(0.20 / 0.30)
    assert curve.points[1].score_retrained is None


def test_flags_are_ranked_by_absolute_attribution() -> None:
    scores = {
        "blocks.0.out": NodeScores("blocks.0.out", np.array([0.1, -0.9, 0.3]), 0.0, "attrib", 4),
        "blocks.1.out": NodeScores("blocks.1.out", np.array([0.5, 0.2]), 0.0, "attrib", 4),
    }
    flagged = {"blocks.0.out": [0, 1, 2], "blocks.1.out": [0, 1]}
    assert rank_flagged(flagged, scores) == [
        ("blocks.0.out", 1), ("blocks.1.out", 0), ("blocks.0.out", 2), ("blocks.1.out", 1), ("blocks.0.out", 0),
    ]


def test_seed_summary_gives_mean_and_range_per_row_and_metric() -> None:
    accuracies = [(0.9, 0.8, 0.7, 0.9), (0.9, 0.6, 0.5, 0.9), (0.9, 0.7, 0.9, 0.9)]
    reports = [
        report_of([row_from_cells("original", balanced_cells(dict(zip(CELLS, (0.99, 0.2, 0.1, 0.99), strict=True)))),
                   row_from_cells("shift_retrained", balanced_cells(dict(zip(CELLS, a, strict=True))))])
        for a in accuracies
    ]
    summary = summarise_seeds(reports, [0, 1, 2], [".", "seeds/seed-1", "seeds/seed-2"])
    gba = [np.mean(a) for a in accuracies]
    spread = summary.rows["shift_retrained"]["group_balanced_accuracy"]
    assert spread.values == pytest.approx(gba)
    assert spread.mean == pytest.approx(np.mean(gba)) and spread.min == pytest.approx(min(gba))
    assert spread.max == pytest.approx(max(gba))
    worst = summary.rows["shift_retrained"]["worst_group_accuracy"]
    assert (worst.min, worst.max) == pytest.approx((0.5, 0.7))  # the lowest cell of each: 0.7, 0.5, 0.7
    assert summary.rows["original"]["accuracy"].min == summary.rows["original"]["accuracy"].max
    with pytest.raises(ValueError) as err:
        summarise_seeds(reports, [0, 1], ["."])
    assert str(err.value) == LENGTHS_DIFFER.format(reports=3, seeds=2, runs=1)
