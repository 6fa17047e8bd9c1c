"""The budget curve's score, as SAEBench's SCR reports it: the share of the gap to the oracle closed.

score = (A_abl - A_base) / (A_oracle - A_base) on group-balanced accuracy: 0 when ablating the top N
flagged features changes nothing, 1 when it reaches the oracle. Undefined (None) without an oracle or
when the oracle is no better than the base.
"""

from __future__ import annotations

from collections.abc import Sequence

from editing_service.report.schema import BudgetCurve, BudgetPoint

DEFAULT_BUDGETS = (2, 5, 10, 20, 50, 100)  # and always "all" (every flagged feature)
MIN_GAP = 1e-9


def scr_score(accuracy: float, *, base: float, oracle: float | None) -> float | None:
    """(accuracy - base) / (oracle - base), or None when the oracle does not stand above the base."""
    if oracle is None or oracle - base <= MIN_GAP:
        return None
    return (accuracy - base) / (oracle - base)


def budget_sizes(n_flagged: int, budgets: Sequence[int] = DEFAULT_BUDGETS) -> list[int]:
    """The Ns of the curve: each budget below the number of flagged features, then all of them."""
    return sorted({b for b in budgets if 0 < b < n_flagged} | ({n_flagged} if n_flagged else set()))


def budget_curve(
    points: Sequence[tuple[int, list[str], float, float | None]], *, base: float, oracle: float | None,
    metric: str = "group_balanced_accuracy",
) -> BudgetCurve:
    """The curve from (N, feature ids, accuracy with the original head, accuracy with the head retrained)."""
    return BudgetCurve(
        metric=metric, base=base, oracle=oracle,
        points=[
            BudgetPoint(
                n=n, features=features, accuracy=accuracy, score=scr_score(accuracy, base=base, oracle=oracle),
                accuracy_retrained=retrained,
                score_retrained=None if retrained is None else scr_score(retrained, base=base, oracle=oracle),
            )
            for n, features, accuracy, retrained in points
        ],
    )
