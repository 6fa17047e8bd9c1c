"""The `leace` baseline: LEACE (Belrose et al. 2023, EleutherAI's `concept-erasure`) on the head's input.

The eraser is fitted on the validate split's head features with the protected groups (one-hot), applied
to the head's input on the training and evaluation splits, and the head retrained on the erased
training features: after it, no linear classifier of the head's input does better than a constant at
predicting the group on the validate split.
"""

from __future__ import annotations

import numpy as np
import torch
from concept_erasure import LeaceEraser

from editing_service.edit.rows.base import ReportRow, RowOutput, RowSkipped, register
from editing_service.edit.rows.context import RowContext

NO_ATTRIBUTE = "the dataset has no protected attribute to erase"
ONE_GROUP = "the validate split has only one group of {attribute!r}"


def fit_leace(features: np.ndarray, groups: np.ndarray) -> LeaceEraser:
    """A LEACE eraser of the groups [n] (names) from `features` [n, d]."""
    names, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    one_hot = torch.nn.functional.one_hot(torch.as_tensor(codes), len(names)).double()
    return LeaceEraser.fit(torch.as_tensor(features, dtype=torch.float64), one_hot)


def erase(eraser: LeaceEraser, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return eraser(torch.as_tensor(features, dtype=torch.float64)).float().numpy()


@register
class Leace(ReportRow):
    name = "leace"
    title = "LEACE on the head's input"
    role = "baseline"
    summary = ("LEACE fitted on the validate split's head features and protected groups, applied to the "
               "head's input, head retrained.")
    order = 50

    def run(self, ctx: RowContext) -> RowOutput:
        if ctx.attribute is None:
            raise RowSkipped(NO_ATTRIBUTE)
        groups = np.asarray(ctx.validate.groups[ctx.attribute]).astype(str)
        if len(set(groups.tolist())) < 2:
            raise RowSkipped(ONE_GROUP.format(attribute=ctx.attribute))
        eraser = fit_leace(ctx.validate_cache.head_features, groups)
        head = ctx.fit_head(erase(eraser, ctx.train_cache.head_features), ctx.train.labels)
        return RowOutput(erase(eraser, ctx.original_eval), head,
                         f"LEACE eraser of {ctx.attribute!r} fitted on the validate subset "
                         f"{ctx.validate.name!r} and applied to the head's input, no feature ablated; "
                         f"{ctx.retrained_head} on the erased features.")
