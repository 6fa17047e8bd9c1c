"""Edges of the circuit by vector-Jacobian products (Marks et al. 2024).

With every site spliced (its output rebuilt from feature and error nodes), the effect of an upstream
node u at site s on a downstream node d at the next site s', toward zero, is

    IE(u -> d) = sum over positions of (dm/dd) * (dd/du) * (0 - u),

summed over the positions of both nodes and averaged over examples; dm/dd is d's total gradient (all
paths to the metric). Edges into the metric are the direct effects: dm/du with every later site's
nodes held fixed.

One forward pass per batch cuts every site's output into a fresh leaf and keeps the output the model
computed (a function of the earlier sites' leaves). The SAE ends of each product are closed forms
(`sae_jacobian`): a downstream feature's cotangent is a column of W_enc where it fires, an upstream
feature's share a row of W_dec. Only the layers between two sites run through autograd, one VJP per
chunk of downstream nodes batched (`is_grads_batched`). Total gradients are carried back site by site in
the same VJPs (one extra row each), from the last site to the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from editing_service.circuit.graph import METRIC_ID, error_id, feature_id
from editing_service.circuit.metric import true_class_metric
from editing_service.circuit.sae_jacobian import error_cotangent, feature_scales, node_effects
from editing_service.model.batching import length_sorted_batches
from editing_service.model.classifier import TextClassifier
from editing_service.model.hooks import intervene
from editing_service.model.sites import Site
from editing_service.sae.base import SAE

NO_SITES = "Edges need at least one spliced site."
Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ERROR_ROW, TOTAL_ROW = -1, -2  # objective rows besides the features: the error node, the total gradient


@dataclass
class CutSite:
    """One site in the cut model: `x` the output as computed from the earlier sites' leaves, and `out`, a
    fresh leaf of the same value that everything downstream reads; `f`, `e` its nodes."""

    x: torch.Tensor
    out: torch.Tensor
    f: torch.Tensor | None = None
    e: torch.Tensor | None = None


@contextmanager
def cut_sites(model: torch.nn.Module, sites: Sequence[Site]) -> Iterator[dict[str, CutSite]]:
    """Replace every site's output by a fresh leaf while open: gradients reach a site's leaf only along
    paths that cross no other site."""
    cut: dict[str, CutSite] = {}

    def make_fn(site: Site):
        def fn(x: torch.Tensor) -> torch.Tensor:
            cut[site.name] = CutSite(x=x, out=x.detach().requires_grad_(True))
            return cut[site.name].out

        return fn

    with intervene(model, {site: make_fn(site) for site in sites}):
        yield cut


@dataclass
class EdgeSums:
    """Running sums of edge weights over examples, per (source site, target site or the metric): a
    [target nodes, source nodes] tensor in the order of the circuit's ids (features, then the error node)."""

    sums: dict[tuple[str, str], torch.Tensor] = field(default_factory=dict)
    n: int = 0

    def add(self, up: str, down: str, n_targets: int, targets: torch.Tensor, effects: torch.Tensor) -> None:
        """Add effects [m, source nodes] into the target rows `targets` [m]."""
        acc = self.sums.get((up, down))
        if acc is None:
            acc = self.sums[(up, down)] = torch.zeros((n_targets, effects.shape[-1]), dtype=torch.float64,
                                                      device=effects.device)
        acc.index_add_(0, targets, effects.double())

    def means(self, ids: Mapping[str, list[str]]) -> dict[tuple[str, str], float]:
        out = {}
        for (up, down), acc in self.sums.items():
            targets = [METRIC_ID] if down == METRIC_ID else ids[down]
            for target, row in zip(targets, (acc / max(self.n, 1)).tolist(), strict=True):
                out.update(((source, target), value) for source, value in zip(ids[up], row, strict=True))
        return out


def _pack(scales: torch.Tensor) -> torch.Tensor:
    """[P, B] slots: row p holds, for example b, the index of the p-th downstream feature with a nonzero
    cotangent in b (-1 past the last). Examples do not interact, so one VJP serves one objective per
    example, and P (the most features firing in one example) VJPs serve them all."""
    active = scales.ne(0).any(1)  # [B, K]
    counts = active.sum(1)
    order = torch.argsort((~active).to(torch.int8), dim=1, stable=True)  # active features first
    slots = order[:, :int(counts.max()) if counts.numel() else 0].T
    return torch.where(torch.arange(slots.shape[0], device=slots.device)[:, None] < counts[None, :], slots, -1)


def _batched_vjp(output: torch.Tensor, inputs: list[torch.Tensor], rows: torch.Tensor) -> list[torch.Tensor | None]:
    """VJPs of K stacked cotangents rows [K, ...] at once (None for an input no path reaches); falls back
    to a loop where vmap cannot run."""
    try:
        return list(torch.autograd.grad(output, inputs, grad_outputs=rows, retain_graph=True,
                                        is_grads_batched=True, allow_unused=True))
    except (RuntimeError, NotImplementedError):
        grads = [torch.autograd.grad(output, inputs, grad_outputs=row, retain_graph=True, allow_unused=True)
                 for row in rows]
        return [None if grads[0][i] is None else torch.stack([g[i] for g in grads]) for i in range(len(inputs))]


def compute_edges(
    classifier: TextClassifier,
    saes: Mapping[Site, SAE],
    texts: list[str],
    labels: np.ndarray,
    circuit: Mapping[str, list[int]],
    *,
    batch_size: int,
    chunk: int,
    metric: Metric = true_class_metric,
    on_progress: Callable[[float], None] | None = None,
) -> dict[tuple[str, str], float]:
    """{(source id, target id): mean edge weight} among the circuit's nodes (`circuit`: features per site,
    every site's error node included): every pair of sites joined by a path through no other site (every
    adjacent pair at least), and every site into the metric. `batch_size` examples per forward pass and
    `chunk` VJP rows per call (the graph settings' defaults suit a CPU)."""
    if not saes:
        raise ValueError(NO_SITES)
    if not texts:
        raise ValueError("Edges need at least one example.")
    by_name = {site.name: sae for site, sae in saes.items()}
    names = list(by_name)
    wanted = {name: sorted(set(circuit.get(name, []))) for name in names}
    ids = {name: [feature_id(name, i) for i in wanted[name]] + [error_id(name)] for name in names}
    sums = EdgeSums()
    device = classifier.device
    done = 0
    for rows, batch in length_sorted_batches(classifier.tokenizer, texts, batch_size=batch_size,
                                             max_length=classifier.max_length):
        batch = batch.to(device)
        tokens = classifier.token_mask(batch["attention_mask"])  # the positions whose nodes count
        y = torch.as_tensor(labels[rows], device=device)
        with torch.enable_grad(), cut_sites(classifier.backbone, list(saes)) as cut:
            values = metric(classifier(batch["input_ids"], batch["attention_mask"]), y)
            outs = [cut[name].out for name in names]
            direct = torch.autograd.grad(values.sum(), outs, allow_unused=True)
            total = {name: g if g is not None else torch.zeros_like(o)
                     for name, g, o in zip(names, direct, outs, strict=True)}
            with torch.no_grad():
                for name in names:
                    node, sae = cut[name], by_name[name]
                    node.f = sae.encode(node.x)
                    node.e = node.x - sae.decode(node.f)
                    effects = node_effects(sae, total[name][None], node.f, node.e, wanted[name], tokens)
                    sums.add(name, METRIC_ID, 1, torch.zeros(1, dtype=torch.long, device=device), effects.sum(1))
            for j in range(len(names) - 1, 0, -1):
                _edges_into(cut, by_name, names[:j], names[j], total, wanted[names[j]], wanted, tokens, chunk, sums)
        sums.n += len(rows)
        done += len(rows)
        if on_progress is not None:
            on_progress(done / len(texts))
    return sums.means(ids)


def _edges_into(
    cut: Mapping[str, CutSite], saes: Mapping[str, SAE], upstream: list[str], down: str,
    total: dict[str, torch.Tensor], features: list[int], wanted: Mapping[str, list[int]], mask: torch.Tensor,
    chunk: int, sums: EdgeSums,
) -> None:
    """Edges from every earlier site with a path to `down` that crosses no other site (for block outputs:
    the previous site only) into the circuit nodes of `down` (`features`, then its error node); adds
    `down`'s total gradient, carried back through the same layers, to those sites' totals (`total[down]`
    must be complete: later sites first)."""
    node, sae = cut[down], saes[down]
    if not node.x.requires_grad:
        return
    with torch.no_grad():
        scales = feature_scales(sae, node.f, total[down], features, mask)  # [B, T, K]
        slots = _pack(scales)  # [P, B]
        directions = sae.W_enc[:, torch.as_tensor(features, dtype=torch.long, device=scales.device)].T  # [K, d]
    objectives = [*range(slots.shape[0]), ERROR_ROW, TOTAL_ROW]
    inputs = [cut[up].out for up in upstream]
    for start in range(0, len(objectives), chunk):
        part = objectives[start:start + chunk]
        packed = slots[start:start + chunk]  # [p, B]: the packed rows of this part
        with torch.no_grad():
            taken = packed.clamp(min=0)
            scale = scales.gather(2, taken.T[:, None, :].expand(-1, scales.shape[1], -1)) * (packed >= 0).T[:, None, :]
            rows = [scale.permute(2, 0, 1)[..., None] * directions[taken][:, :, None, :]]
            if ERROR_ROW in part:
                rows.append(error_cotangent(sae, node.f, total[down], mask)[None])
            if TOTAL_ROW in part:
                rows.append(total[down][None])
        grads = _batched_vjp(node.x, inputs, torch.cat(rows))
        with torch.no_grad():
            for up, grad in zip(upstream, grads, strict=True):
                if grad is None:
                    continue
                if TOTAL_ROW in part:
                    total[up] = total[up] + grad[-1]
                effects = node_effects(saes[up], grad[:len(packed) + (ERROR_ROW in part)], cut[up].f, cut[up].e,
                                       wanted[up], mask)  # [p (+ 1), B, n_up + 1]
                live = packed >= 0
                sums.add(up, down, len(features) + 1, packed[live], effects[:len(packed)][live])
                if ERROR_ROW in part:
                    error_row = torch.full((1,), len(features), dtype=torch.long, device=effects.device)
                    sums.add(up, down, len(features) + 1, error_row, effects[-1].sum(0, keepdim=True))
