"""The `shift` row: the flagged features ablated, the original head kept (no retraining)."""

from __future__ import annotations

from editing_service.edit.rows.base import ReportRow, RowOutput, register
from editing_service.edit.rows.context import RowContext


@register
class Shift(ReportRow):
    name = "shift"
    title = "SHIFT (no retrain)"
    role = "edit"
    summary = "Flagged features ablated, original head kept."
    order = 10
    optional = False

    def run(self, ctx: RowContext) -> RowOutput:
        head = "the model's own head" if ctx.own_head else "the probe head fitted at discovery"
        return RowOutput(ctx.shift_eval, ctx.original_head,
                         f"{ctx.flag_phrase(ctx.flagged)} ablated ({ctx.settings.edit.mode} ablation, SAE error "
                         f"term kept); {head}, not retrained.")
