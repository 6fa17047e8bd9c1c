"""Exact edges (tests and spot checks): patch one upstream node, recompute one downstream node, patch it.

For u at site s and d at a later site s': zero u at every position (the rest of site s, its error
included, unchanged; every site between s and s' held at its clean output) and read d's new value d'
at s'; then rerun the clean model with only d set to d' (the rest of s' unchanged). Edge = mean over examples of m(d := d') - m(clean). Into the metric: zero u
with every later site's output held at its clean value. One or two forward passes per edge: tiny
models only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from editing_service.circuit.graph import ERROR, METRIC_ID
from editing_service.circuit.metric import true_class_metric
from editing_service.model.classifier import TextClassifier
from editing_service.model.hooks import capture, intervene
from editing_service.model.sites import Site
from editing_service.sae.splice import Dictionary


def _node_value(sae: Dictionary, x: torch.Tensor, node: str) -> torch.Tensor:
    f = sae.encode(x)
    if node == ERROR:
        return x - sae.decode(f)
    return f[..., int(node)]


def _set_node(sae: Dictionary, node: str, value: torch.Tensor):
    """A site function that sets one node to `value` (the rest of the site as it is)."""
    def fn(x: torch.Tensor) -> torch.Tensor:
        current = _node_value(sae, x, node)
        if node == ERROR:
            return x + (value - current)
        return x + (value - current)[..., None] * sae.W_dec[int(node)]
    return fn


@torch.no_grad()
def exact_edges(
    classifier: TextClassifier,
    saes: Mapping[Site, Dictionary],
    texts: list[str],
    labels: np.ndarray,
    circuit: Mapping[str, list[int]],
) -> dict[tuple[str, str], float]:
    """The same keys as `compute_edges` ({(source id, target id): effect}), computed by patching."""
    sites = list(saes)
    batch = classifier.tokenizer(texts, padding=True, truncation=True, max_length=classifier.max_length,
                                 return_tensors="pt").to(classifier.device)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    y = torch.as_tensor(labels, device=classifier.device)

    def metric() -> torch.Tensor:
        return true_class_metric(classifier(ids, mask), y)

    with capture(classifier.backbone, sites) as clean_outputs:
        clean = metric()
    clean_outputs = dict(clean_outputs)
    nodes = {s.name: [str(i) for i in sorted(set(circuit.get(s.name, [])))] + [ERROR] for s in sites}
    out: dict[tuple[str, str], float] = {}
    for j, site in enumerate(sites):
        sae = saes[site]
        later = sites[j + 1:]
        for u in nodes[site.name]:
            zero_u = _set_node(sae, u, torch.zeros_like(_node_value(sae, clean_outputs[site.name], u)))
            frozen = {s: (lambda _x, s=s: clean_outputs[s.name]) for s in later}
            with intervene(classifier.backbone, {site: zero_u, **frozen}):
                out[(f"{site.name}/{u}", METRIC_ID)] = float((metric() - clean).mean())
            for k, down in enumerate(later):
                between = {s: (lambda _x, s=s: clean_outputs[s.name]) for s in later[:k]}
                with intervene(classifier.backbone, {site: zero_u, **between}), \
                        capture(classifier.backbone, [down]) as seen:
                    classifier(ids, mask)
                patched_x = seen[down.name]
                for d in nodes[down.name]:
                    d_new = _node_value(saes[down], patched_x, d)
                    with intervene(classifier.backbone, {down: _set_node(saes[down], d, d_new)}):
                        out[(f"{site.name}/{u}", f"{down.name}/{d}")] = float((metric() - clean).mean())
    return out
