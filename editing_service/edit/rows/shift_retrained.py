"""The `shift_retrained` row (the edited model that is saved): flagged features ablated, head retrained."""

from __future__ import annotations

from editing_service.edit.rows.base import ReportRow, RowOutput, register
from editing_service.edit.rows.context import RowContext


@register
class ShiftRetrained(ReportRow):
    name = "shift_retrained"
    title = "SHIFT + retrained head"
    role = "edit"
    summary = "Flagged features ablated, head retrained on the training set with the ablation in place."
    order = 20
    optional = False

    def run(self, ctx: RowContext) -> RowOutput:
        return RowOutput(ctx.shift_eval, ctx.shift_head,
                         f"{ctx.flag_phrase(ctx.flagged)} ablated; {ctx.retrained_head} with the ablation "
                         "in place. This is the edited model that is saved.")
