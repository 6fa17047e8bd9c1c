"""The budget curve's measurements: ablate the top N flagged features by attribution, read the evaluation
split with the original head and with a head retrained on the training split (SAEBench's SCR protocol).
The normalised score is computed by `editing_service.report.budget`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from editing_service.edit.rows.context import RowContext
from editing_service.report.budget import budget_sizes
from editing_service.report.metrics import group_accuracy


def rank_flagged(flagged: dict[str, list[int]], scores: dict) -> list[tuple[str, int]]:
    """Flagged (site, feature) pairs by |attribution score|, strongest first (sites in order on ties)."""
    pairs = [(site, f) for site in flagged for f in flagged[site]]
    strength = [abs(float(scores[site].features[f])) if site in scores else 0.0 for site, f in pairs]
    order = np.argsort(-np.asarray(strength), kind="stable")
    return [pairs[i] for i in order]


def group_balanced(ctx: RowContext, features: np.ndarray, head: nn.Linear) -> float:
    with torch.no_grad():
        x = torch.from_numpy(features).to(head.weight)
        logits = x @ head.weight.T + (head.bias if head.bias is not None else 0)
    return float(group_accuracy(
        y_true=ctx.evaluate.labels, y_pred=logits.argmax(1).cpu().numpy(),
        groups=np.asarray(ctx.evaluate.groups[ctx.attribute]).astype(str), label_names=ctx.evaluate.label_names,
    )["group_balanced_accuracy"])


def budget_points(
    ctx: RowContext, budgets: Sequence[int]
) -> list[tuple[int, list[str], float, float | None]]:
    """(N, feature ids, group-balanced accuracy with the original head, with the head retrained) per N.

    Every point ablates features only: with erasers in the SHIFT edit, the point of every flag is not the
    SHIFT rows' (the curve says what the features do, as SAEBench's SCR does)."""
    ranked = rank_flagged(ctx.flagged, ctx.scores)
    out = []
    for n in budget_sizes(len(ranked), budgets):
        chosen: dict[str, list[int]] = {}
        for site, feature in ranked[:n]:
            chosen.setdefault(site, []).append(feature)
        if n == len(ranked) and not ctx.shift_erasers:  # every flag: the SHIFT rows' own features and head
            evaluated, head = ctx.shift_eval, ctx.shift_head
        else:  # the features alone, without the erasers the SHIFT edit may add
            edits = ctx.ablation({site: sorted(v) for site, v in chosen.items()})
            evaluated = ctx.read(ctx.evaluate.texts, edits, f"budget:{n}:eval")
            head = ctx.fit_head(ctx.read(ctx.train.texts, edits, f"budget:{n}:retrain"), ctx.train.labels)
        out.append((n, [f"{site}/{feature}" for site, feature in ranked[:n]],
                    group_balanced(ctx, evaluated, ctx.original_head), group_balanced(ctx, evaluated, head)))
    return out
