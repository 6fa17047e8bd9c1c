"""The `neuron_ablation` baseline (the SHIFT paper's neuron skyline): at every site SHIFT edits, as many
neurons as features are flagged there, the strongest by the same attribution patching (same metric, same
examples), zeroed; head retrained. It shows whether the SAE's features do the work."""

from __future__ import annotations

from editing_service.circuit.neurons import neuron_attribution, top_neurons
from editing_service.circuit.sample import stratified_sample
from editing_service.edit.neurons import NeuronAblation
from editing_service.edit.rows.base import ReportRow, RowOutput, register
from editing_service.edit.rows.context import RowContext


def choose_neurons(ctx: RowContext) -> dict[str, list[int]]:
    """{site: neuron indices}: the top |attribution| neurons, as many as flagged features at each site."""
    rows = stratified_sample(ctx.train.labels, n_examples=ctx.settings.attribution.n_examples,
                            seed=ctx.settings.attribution.seed)
    sites = ctx.classifier.resolve_sites(list(ctx.flagged))
    scores = neuron_attribution(ctx.classifier, sites, [ctx.train.texts[i] for i in rows], ctx.train.labels[rows],
                                batch_size=ctx.settings.attribution.batch_size)
    return {site: top_neurons(scores[site], min(len(features), len(scores[site])))
            for site, features in ctx.flagged.items()}


@register
class NeuronAblationRow(ReportRow):
    name = "neuron_ablation"
    title = "ablation of as many top-attributed neurons"
    role = "baseline"
    summary = "As many neurons as flagged features at each site, top by attribution patching, zeroed; head retrained."
    order = 60
    on_by_default = False  # about 1.5 forward passes over the training set: asked for with --rows

    def run(self, ctx: RowContext) -> RowOutput:
        chosen = choose_neurons(ctx)
        sites = {s.name: s for s in ctx.classifier.resolve_sites(list(chosen))}
        edits = [NeuronAblation(sites[site], neurons) for site, neurons in chosen.items()]
        head = ctx.fit_head(ctx.read(ctx.train.texts, edits, "retrain:neurons"), ctx.train.labels)
        n = sum(len(v) for v in chosen.values())
        return RowOutput(ctx.read(ctx.evaluate.texts, edits, "eval:neurons"), head,
                         f"{n} neurons (as many as flagged features at each of {', '.join(chosen)}), the "
                         f"strongest by attribution patching, zeroed; {ctx.retrained_head}.")
