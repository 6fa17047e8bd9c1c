"""Attribution patching ("attrib"): every site spliced at once, one forward and one backward per batch.

IE(s, t, i) = dm/df_{s,t,i} * (0 - f_{s,t,i});  IE(s, t, error) = sum_j dm/de_{s,t,j} * (0 - e_{s,t,j}).
Gradients are taken with `torch.autograd.grad` on the spliced leaves only, so no parameter gradient is
ever computed or accumulated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from editing_service.circuit.metric import true_class_metric
from editing_service.circuit.scores import NodeScores, ScoreAccumulator
from editing_service.model.batching import length_sorted_batches
from editing_service.model.classifier import TextClassifier
from editing_service.model.sites import Site
from editing_service.sae.splice import Dictionary, splice

NO_EXAMPLES = "Attribution needs at least one example."


def d_sae_of(sae: Dictionary) -> int:
    return int(sae.W_dec.shape[0])


def attribution_patching(
    classifier: TextClassifier,
    saes: Mapping[Site, Dictionary],
    texts: list[str],
    labels: np.ndarray,
    *,
    batch_size: int = 16,
    metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = true_class_metric,
    on_progress: Callable[[float], None] | None = None,
) -> dict[str, NodeScores]:
    """Node scores of every site by attribution patching.

    `metric(logits [B, C], labels [B]) -> [B]` is what the effects are measured on (default: the
    true-class metric; `lambda logits, _: logits[:, c]` gives the effects on class c's logit).
    """
    if not texts:
        raise ValueError(NO_EXAMPLES)
    acc = {site.name: ScoreAccumulator(site.name, d_sae_of(sae), "attrib") for site, sae in saes.items()}
    device = classifier.device
    done = 0
    for rows, batch in length_sorted_batches(
        classifier.tokenizer, texts, batch_size=batch_size, max_length=classifier.max_length
    ):
        batch = batch.to(device)
        y = torch.as_tensor(labels[rows], device=device)
        with torch.enable_grad(), splice(classifier.backbone, saes, keep_error=True, track_grad=True) as nodes:
            values = metric(classifier(batch["input_ids"], batch["attention_mask"]), y)
            leaves = [t for n in nodes.values() for t in (n.features, n.error)]
            grads = torch.autograd.grad(values.sum(), leaves, allow_unused=True)
        for j, name in enumerate(nodes):
            f, e = nodes[name].features, nodes[name].error
            gf = grads[2 * j] if grads[2 * j] is not None else torch.zeros_like(f)
            ge = grads[2 * j + 1] if grads[2 * j + 1] is not None else torch.zeros_like(e)
            acc[name].add((-f * gf).detach(), (-e * ge).sum(-1).detach(),
                          classifier.token_mask(batch["attention_mask"]))
        done += len(rows)
        if on_progress is not None:
            on_progress(done / len(texts))
    return {name: a.result() for name, a in acc.items()}
