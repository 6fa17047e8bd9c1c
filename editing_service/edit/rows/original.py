"""The `original` row: the classifier as given (a probe's head as fitted at discovery, or a sequence
classifier's own head, kept)."""

from __future__ import annotations

from editing_service.edit.rows.base import ReportRow, RowOutput, register
from editing_service.edit.rows.context import RowContext


@register
class Original(ReportRow):
    name = "original"
    title = "the original model"
    role = "reference"
    summary = "The classifier as given, no edit."
    order = 0
    optional = False

    def run(self, ctx: RowContext) -> RowOutput:
        return RowOutput(ctx.original_eval, ctx.original_head,
                         f"The classifier as given, no edit: {ctx.original_head_origin}.")
