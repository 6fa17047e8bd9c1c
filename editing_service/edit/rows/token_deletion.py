"""The `token_deletion` baseline: the concept lexicon's words deleted from every input, head retrained."""

from __future__ import annotations

from editing_service.edit.rows.base import ReportRow, RowOutput, register
from editing_service.edit.rows.context import RowContext
from editing_service.features import load_lexicon
from editing_service.report.baselines import delete_words


@register
class TokenDeletion(ReportRow):
    name = "token_deletion"
    title = "deletion of the concept's tokens"
    role = "baseline"
    summary = "The concept lexicon's words deleted from every input (training and evaluation), head retrained."
    order = 40

    def run(self, ctx: RowContext) -> RowOutput:
        lexicon = load_lexicon(ctx.settings.suggestions.lexicon)
        train = ctx.read(delete_words(ctx.train.texts, lexicon.words), [], "retrain:token_deletion")
        head = ctx.fit_head(train, ctx.train.labels)
        features = ctx.read(delete_words(ctx.evaluate.texts, lexicon.words), [], "eval:token_deletion")
        return RowOutput(features, head, f"Words of the {lexicon.name!r} lexicon deleted from every input, no "
                         f"feature ablated; {ctx.retrained_head}.")
