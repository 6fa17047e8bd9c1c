"""Attribution patching on neurons: the indirect effect of zeroing each dimension of a site's output.

IE(s, i) = sum_t dm/dx_{s,t,i} * (0 - x_{s,t,i}), summed over non-pad positions and averaged over
examples: the same estimate, metric and examples as the SAE features' scores, with the site's own
basis in place of a dictionary. The neuron-ablation row ("neuron skyline") ranks neurons by it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from editing_service.circuit.metric import true_class_metric
from editing_service.model.batching import length_sorted_batches
from editing_service.model.classifier import TextClassifier
from editing_service.model.hooks import intervene
from editing_service.model.sites import Site

NO_EXAMPLES = "Neuron attribution needs at least one example."


def neuron_attribution(
    classifier: TextClassifier,
    sites: Sequence[Site],
    texts: list[str],
    labels: np.ndarray,
    *,
    batch_size: int = 16,
    metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = true_class_metric,
) -> dict[str, np.ndarray]:
    """{site name: [d] signed neuron scores} (negative: zeroing the neuron lowers the metric)."""
    if not texts:
        raise ValueError(NO_EXAMPLES)
    totals: dict[str, torch.Tensor] = {}
    n = 0
    seen: dict[str, torch.Tensor] = {}  # this batch's site outputs

    def keep(site: Site) -> Callable[[torch.Tensor], torch.Tensor]:
        def read(hidden: torch.Tensor) -> torch.Tensor:
            if not hidden.requires_grad:  # no graph above this site: make it a leaf that tracks one
                hidden = hidden.detach().requires_grad_(True)
            seen[site.name] = hidden
            return hidden

        return read

    for rows, batch in length_sorted_batches(
        classifier.tokenizer, texts, batch_size=batch_size, max_length=classifier.max_length
    ):
        batch = batch.to(classifier.device)
        y = torch.as_tensor(labels[rows], device=classifier.device)
        seen.clear()
        with torch.enable_grad(), intervene(classifier.backbone, {s: keep(s) for s in sites}):
            values = metric(classifier(batch["input_ids"], batch["attention_mask"]), y)
            grads = torch.autograd.grad(values.sum(), [seen[s.name] for s in sites], allow_unused=True)
        mask = classifier.token_mask(batch["attention_mask"]).to(torch.float64)[..., None]
        for site, grad in zip(sites, grads, strict=True):
            x = seen[site.name].detach().double()
            effect = -x * (grad.double() if grad is not None else torch.zeros_like(x))
            total = (effect * mask).sum((0, 1)).cpu()
            totals[site.name] = totals.get(site.name, 0) + total
        n += len(rows)
    return {name: (total / n).numpy() for name, total in totals.items()}


def top_neurons(scores: np.ndarray, n: int) -> list[int]:
    """The `n` neurons of largest |score|, strongest first (ties in index order)."""
    order = np.argsort(-np.abs(np.asarray(scores, dtype=np.float64)), kind="stable")
    return [int(i) for i in order[:n]]
