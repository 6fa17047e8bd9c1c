"""Integrated gradients ("ig") toward zero, one site at a time, N steps.

With alpha_k = k / N (k = 0..N-1), the site's output is D((1 - alpha_k) f) + (1 - alpha_k) e, and
IE(s, t, i) = (0 - f_{s,t,i}) * mean_k dm/df_{s,t,i}. The N steps of one batch run as one batch of
B * N sequences. Costs about sites x N forward+backward passes per example: worth it where
attribution patching's linear approximation is poor (early layers, large effects).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from editing_service.circuit.attribution import NO_EXAMPLES, d_sae_of
from editing_service.circuit.metric import true_class_metric
from editing_service.circuit.scores import NodeScores, ScoreAccumulator
from editing_service.model.batching import length_sorted_batches
from editing_service.model.classifier import TextClassifier
from editing_service.model.hooks import intervene
from editing_service.model.sites import Site
from editing_service.sae.splice import Dictionary


def _site_ig(
    classifier: TextClassifier, site: Site, sae: Dictionary, batch: dict, y: torch.Tensor, steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(feature effects [B, T, d_sae], error effects [B, T]) of one batch at one site."""
    b = batch["input_ids"].shape[0]
    alphas = torch.arange(steps, device=y.device, dtype=torch.float32) / steps  # [N]
    ids = batch["input_ids"].repeat(steps, 1)  # [N*B, T], step-major
    mask = batch["attention_mask"].repeat(steps, 1)
    state: dict[str, torch.Tensor] = {}

    def replace(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = sae.encode(x[:b])  # the clean batch: every step copy has the same x here
            e = x[:b] - sae.decode(f)
        scale = (1 - alphas).repeat_interleave(b)[:, None, None]  # [N*B, 1, 1]
        f_k = (f.repeat(steps, 1, 1) * scale).requires_grad_(True)
        e_k = (e.repeat(steps, 1, 1) * scale).requires_grad_(True)
        state.update(f=f, e=e, f_k=f_k, e_k=e_k)
        return (sae.decode(f_k) + e_k).to(x.dtype)

    with torch.enable_grad(), intervene(classifier.backbone, {site: replace}):
        metric = true_class_metric(classifier(ids, mask), y.repeat(steps))
        gf, ge = torch.autograd.grad(metric.sum(), [state["f_k"], state["e_k"]])
    gf = gf.view(steps, b, *gf.shape[1:]).mean(0)
    ge = ge.view(steps, b, *ge.shape[1:]).mean(0)
    return (-state["f"] * gf).detach(), (-state["e"] * ge).sum(-1).detach()


def integrated_gradients(
    classifier: TextClassifier,
    saes: Mapping[Site, Dictionary],
    texts: list[str],
    labels: np.ndarray,
    *,
    steps: int = 10,
    batch_size: int = 8,
    on_progress: Callable[[float], None] | None = None,
) -> dict[str, NodeScores]:
    """Node scores of every site by integrated gradients (each site patched alone)."""
    if not texts:
        raise ValueError(NO_EXAMPLES)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    device = classifier.device
    acc = {site.name: ScoreAccumulator(site.name, d_sae_of(sae), "ig") for site, sae in saes.items()}
    total, done = len(texts) * len(saes), 0
    for rows, batch in length_sorted_batches(
        classifier.tokenizer, texts, batch_size=batch_size, max_length=classifier.max_length
    ):
        batch = batch.to(device)
        y = torch.as_tensor(labels[rows], device=device)
        for site, sae in saes.items():
            feature_effects, error_effects = _site_ig(classifier, site, sae, batch, y, steps)
            acc[site.name].add(feature_effects, error_effects, classifier.token_mask(batch["attention_mask"]))
            done += len(rows)
            if on_progress is not None:
                on_progress(done / total)
    return {name: a.result() for name, a in acc.items()}
