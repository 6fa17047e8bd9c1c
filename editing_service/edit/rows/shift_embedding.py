"""The `shift_embedding` baseline: SHIFT at the embedding output only (`embeddings.out`), head retrained.

A critique of SHIFT found that a few embedding-level features debias as well as many later ones; this row
ablates the features flagged at the embedding output, and nothing else. Its SAE is trained because the
row asks for the site (`needs_sites`); SHIFT's own row edits the run's sites only.
"""

from __future__ import annotations

from editing_service.edit.rows.base import ReportRow, RowOutput, RowSkipped, register
from editing_service.edit.rows.context import RowContext
from editing_service.model.sites import EMBEDDING_SITE

NO_FLAGS = f"no feature was flagged at {EMBEDDING_SITE}"
NO_SAE = f"no SAE at {EMBEDDING_SITE} (the model adds its embeddings inline, or discovery did not train one)"


@register
class ShiftEmbedding(ReportRow):
    name = "shift_embedding"
    title = "SHIFT at the embedding output only (+ retrained head)"
    role = "baseline"
    summary = f"The features flagged at {EMBEDDING_SITE} ablated (nowhere else), head retrained."
    order = 70
    on_by_default = False  # an extra SAE and a forward pass over the training set: asked for with --rows
    needs_sites = (EMBEDDING_SITE,)

    def run(self, ctx: RowContext) -> RowOutput:
        if EMBEDDING_SITE not in ctx.saes:
            raise RowSkipped(NO_SAE)
        features = ctx.all_flagged.get(EMBEDDING_SITE)
        if not features:
            raise RowSkipped(NO_FLAGS)
        edits = ctx.ablation({EMBEDDING_SITE: features})
        head = ctx.fit_head(ctx.read(ctx.train.texts, edits, "retrain:embedding"), ctx.train.labels)
        return RowOutput(ctx.read(ctx.evaluate.texts, edits, "eval:embedding"), head,
                         f"{ctx.flag_phrase({EMBEDDING_SITE: features})} ablated, no other site edited; "
                         f"{ctx.retrained_head} with the ablation in place.")
