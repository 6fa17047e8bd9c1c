"""The `random_ablation` baseline: as many random live features at the same sites, head retrained."""

from __future__ import annotations

from editing_service.edit.rows.base import ReportRow, RowOutput, RowSkipped, register
from editing_service.edit.rows.context import RowContext
from editing_service.edit.served import alive_features
from editing_service.report.baselines import TooFewFeatures, random_features


@register
class RandomAblation(ReportRow):
    name = "random_ablation"
    title = "random ablation of as many features"
    role = "baseline"
    summary = "As many random live SAE features at the same sites as are flagged, head retrained."
    order = 30

    def run(self, ctx: RowContext) -> RowOutput:
        alive = {site: alive_features(ctx.saes[site], ctx.train_cache, site) for site in ctx.flagged}
        try:
            drawn = random_features(ctx.flagged, alive, seed=ctx.seed)
        except TooFewFeatures as why:  # most of a site's live features flagged: no control of that size exists
            raise RowSkipped(str(why)) from why
        edits = ctx.ablation(drawn)
        head = ctx.fit_head(ctx.read(ctx.train.texts, edits, "retrain:random"), ctx.train.labels)
        return RowOutput(ctx.read(ctx.evaluate.texts, edits, "eval:random"), head,
                         f"{ctx.n_flagged} random live features (none flagged) ablated at the same sites; "
                         f"{ctx.retrained_head}.")
