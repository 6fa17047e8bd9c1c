"""Exact ablation (for tests and spot checks): zero one feature at every position, rerun, compare.

Effect of feature i of site s = mean over examples of m(f_i := 0) - m(clean), the error term kept.
Costs one forward pass per feature: only for small models or a handful of features.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from editing_service.circuit.metric import true_class_metric
from editing_service.model.classifier import TextClassifier
from editing_service.model.hooks import intervene
from editing_service.model.sites import Site
from editing_service.sae.splice import Dictionary


@torch.no_grad()
def _metric(classifier: TextClassifier, batch: dict, y: torch.Tensor) -> torch.Tensor:
    return true_class_metric(classifier(batch["input_ids"], batch["attention_mask"]), y)


@torch.no_grad()
def exact_ablation(
    classifier: TextClassifier,
    saes: Mapping[Site, Dictionary],
    texts: list[str],
    labels: np.ndarray,
    *,
    features: Mapping[str, list[int]] | None = None,
    include_error: bool = True,
) -> dict[str, dict[str, object]]:
    """{site: {"features": {i: effect}, "error": effect}} for the requested features (all by default)."""
    device = classifier.device
    batch = classifier.tokenizer(texts, padding=True, truncation=True, max_length=classifier.max_length,
                                 return_tensors="pt").to(device)
    y = torch.as_tensor(labels, device=device)
    clean = _metric(classifier, batch, y)
    out: dict[str, dict[str, object]] = {}
    for site, sae in saes.items():
        wanted = features.get(site.name, []) if features is not None else range(int(sae.W_dec.shape[0]))
        effects: dict[int, float] = {}
        for i in wanted:
            def ablate(x: torch.Tensor, i: int = i, sae: Dictionary = sae) -> torch.Tensor:
                f = sae.encode(x)
                return x - f[..., i : i + 1] * sae.W_dec[i]

            with intervene(classifier.backbone, {site: ablate}):
                effects[int(i)] = float((_metric(classifier, batch, y) - clean).mean())
        entry: dict[str, object] = {"features": effects}
        if include_error:
            def drop_error(x: torch.Tensor, sae: Dictionary = sae) -> torch.Tensor:
                return sae.decode(sae.encode(x))

            with intervene(classifier.backbone, {site: drop_error}):
                entry["error"] = float((_metric(classifier, batch, y) - clean).mean())
        out[site.name] = entry
    return out
