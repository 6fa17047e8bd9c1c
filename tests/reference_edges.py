"""The autograd reference for edges (tests only): the previous product path, kept to check the analytic one.

Every site is spliced with its nodes cut into fresh leaves, and each batched VJP runs back through both
SAEs densely (the downstream encoder and the upstream decoder) as well as the layers between the sites.
Same definition and output as `editing_service.circuit.edges.compute_edges`, at several times the cost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from editing_service.circuit.graph import METRIC_ID, error_id, feature_id
from editing_service.circuit.metric import true_class_metric
from editing_service.model.batching import length_sorted_batches
from editing_service.model.classifier import TextClassifier
from editing_service.model.hooks import intervene
from editing_service.model.sites import Site
from editing_service.sae.splice import Dictionary, splice

NO_SITES = "Edges need at least one spliced site."
Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class CutNodes:
    """One site in the cut splice: `f_in`, `e_in` as functions of upstream leaves, and the fresh leaves
    `f`, `e` (same values) that everything downstream reads."""

    f_in: torch.Tensor | None = None
    e_in: torch.Tensor | None = None
    f: torch.Tensor | None = None
    e: torch.Tensor | None = None


@contextmanager
def cut_splice(model: nn.Module, saes: Mapping[Site, Dictionary]) -> Iterator[dict[str, CutNodes]]:
    """Splice every site with its nodes cut into new leaves: gradients reach a site's leaves only along
    paths that cross no other site."""
    nodes = {site.name: CutNodes() for site in saes}

    def make_fn(site: Site, sae: Dictionary):
        def fn(x: torch.Tensor) -> torch.Tensor:
            f_in = sae.encode(x)
            e_in = x - sae.decode(f_in)
            f = f_in.detach().requires_grad_(True)
            e = e_in.detach().requires_grad_(True)
            nodes[site.name] = CutNodes(f_in=f_in, e_in=e_in, f=f, e=e)
            return (sae.decode(f) + e).to(x.dtype)

        return fn

    with intervene(model, {site: make_fn(site, sae) for site, sae in saes.items()}):
        yield nodes


@dataclass
class EdgeSums:
    """Running sums of edge weights over examples: {(source id, target id): sum}."""

    sums: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    n: int = 0

    def add(self, source: str, target: str, value: float) -> None:
        self.sums[(source, target)] += value

    def means(self) -> dict[tuple[str, str], float]:
        return {key: value / max(self.n, 1) for key, value in self.sums.items()}


def _effects_on(grads_f: torch.Tensor, grads_e: torch.Tensor, f: torch.Tensor, e: torch.Tensor,
                features: list[int], mask: torch.Tensor) -> torch.Tensor:
    """[..., n_features + 1]: sum over examples and positions of grad * (0 - node) for the listed
    upstream features and the error node (last column); grads carry any leading batch dims."""
    m = mask.to(f.dtype)
    idx = torch.as_tensor(features, dtype=torch.long, device=f.device)
    feat = -(grads_f[..., idx] * f[..., idx] * m[..., None]).sum((-3, -2))
    err = -(grads_e * e * m[..., None]).sum((-3, -2, -1))
    return torch.cat([feat, err[..., None]], dim=-1)


def _downstream_objectives(
    node: CutNodes, grads_f: torch.Tensor, grads_e: torch.Tensor, features: list[int], mask: torch.Tensor,
) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Per downstream node: (kind, grad_output for f_in, grad_output for e_in), so that the VJP is the
    gradient of sum over positions of (dm/dd) * d."""
    m = mask.to(grads_f.dtype)[..., None]
    out = []
    for i in features:
        go_f = torch.zeros_like(grads_f)
        go_f[..., i] = grads_f[..., i] * m[..., 0]
        out.append((str(i), go_f, torch.zeros_like(grads_e)))
    out.append(("error", torch.zeros_like(grads_f), grads_e * m))
    return out


def _batched_vjp(outputs: tuple[torch.Tensor, ...], inputs: list[torch.Tensor],
                 grad_outputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor | None]:
    """VJPs of K stacked grad_outputs ([K, ...]) at once (None for an input no path reaches); falls back
    to a loop where vmap cannot run."""
    try:
        return list(torch.autograd.grad(outputs, inputs, grad_outputs=grad_outputs, retain_graph=True,
                                        is_grads_batched=True, allow_unused=True))
    except (RuntimeError, NotImplementedError):
        rows = [torch.autograd.grad(outputs, inputs, grad_outputs=row, retain_graph=True, allow_unused=True)
                for row in zip(*grad_outputs, strict=True)]
        return [None if rows[0][i] is None else torch.stack([r[i] for r in rows]) for i in range(len(inputs))]


def reference_edges(
    classifier: TextClassifier,
    saes: Mapping[Site, Dictionary],
    texts: list[str],
    labels: np.ndarray,
    circuit: Mapping[str, list[int]],
    *,
    batch_size: int = 16,
    chunk: int = 8,
    metric: Metric = true_class_metric,
    on_progress: Callable[[float], None] | None = None,
) -> dict[tuple[str, str], float]:
    """{(source id, target id): mean edge weight} among the circuit's nodes (`circuit`: features per site,
    every site's error node included): every pair of sites joined by a path through no other site (every
    adjacent pair at least), and every site into the metric."""
    if not saes:
        raise ValueError(NO_SITES)
    if not texts:
        raise ValueError("Edges need at least one example.")
    names = [site.name for site in saes]
    wanted = {name: sorted(set(circuit.get(name, []))) for name in names}
    ids = {name: [feature_id(name, i) for i in wanted[name]] + [error_id(name)] for name in names}
    sums = EdgeSums()
    device = classifier.device
    done = 0
    for rows, batch in length_sorted_batches(classifier.tokenizer, texts, batch_size=batch_size,
                                             max_length=classifier.max_length):
        batch = batch.to(device)
        mask = batch["attention_mask"]
        y = torch.as_tensor(labels[rows], device=device)
        with torch.enable_grad():
            with splice(classifier.backbone, saes, keep_error=True, track_grad=True) as total:
                values = metric(classifier(batch["input_ids"], mask), y)
                leaves = [t for n in total.values() for t in (n.features, n.error)]
                grads = torch.autograd.grad(values.sum(), leaves, allow_unused=True)
            total_grads = {
                name: tuple(g if g is not None else torch.zeros_like(t)
                            for g, t in zip(grads[2 * j: 2 * j + 2], leaves[2 * j: 2 * j + 2], strict=True))
                for j, name in enumerate(names)
            }
            with cut_splice(classifier.backbone, saes) as cut:
                values = metric(classifier(batch["input_ids"], mask), y)
                leaves = [t for name in names for t in (cut[name].f, cut[name].e)]
                direct = torch.autograd.grad(values.sum(), leaves, retain_graph=True, allow_unused=True)
                for j, name in enumerate(names):
                    gf = direct[2 * j] if direct[2 * j] is not None else torch.zeros_like(leaves[2 * j])
                    ge = direct[2 * j + 1] if direct[2 * j + 1] is not None else torch.zeros_like(leaves[2 * j + 1])
                    effects = _effects_on(gf, ge, cut[name].f, cut[name].e, wanted[name], mask)
                    for source, value in zip(ids[name], effects.tolist(), strict=True):
                        sums.add(source, METRIC_ID, value)
                for j, down in enumerate(names[1:], start=1):
                    _edges_into(cut, names[:j], down, total_grads[down], wanted, ids, mask, chunk, sums)
        sums.n += len(rows)
        done += len(rows)
        if on_progress is not None:
            on_progress(done / len(texts))
    return sums.means()


def _edges_into(
    cut: Mapping[str, CutNodes], upstream: list[str], down: str, down_grads: tuple[torch.Tensor, torch.Tensor],
    wanted: Mapping[str, list[int]], ids: Mapping[str, list[str]], mask: torch.Tensor, chunk: int, sums: EdgeSums,
) -> None:
    """Edges from every earlier site with a path to `down` that crosses no other site (for block outputs:
    the previous site only), for every circuit node of `down`."""
    objectives = _downstream_objectives(cut[down], *down_grads, wanted[down], mask)
    inputs = [t for up in upstream for t in (cut[up].f, cut[up].e)]
    for start in range(0, len(objectives), chunk):
        part = objectives[start:start + chunk]
        go = (torch.stack([p[1] for p in part]), torch.stack([p[2] for p in part]))
        grads = _batched_vjp((cut[down].f_in, cut[down].e_in), inputs, go)
        for j, up in enumerate(upstream):
            gf, ge = grads[2 * j], grads[2 * j + 1]
            if gf is None and ge is None:
                continue
            node = cut[up]
            gf = gf if gf is not None else torch.zeros((len(part), *node.f.shape), dtype=node.f.dtype)
            ge = ge if ge is not None else torch.zeros((len(part), *node.e.shape), dtype=node.e.dtype)
            effects = _effects_on(gf, ge, node.f, node.e, wanted[up], mask)  # [K, n_up + 1]
            for k, row in enumerate(effects.tolist()):
                target = ids[down][start + k]
                for source, value in zip(ids[up], row, strict=True):
                    sums.add(source, target, value)
