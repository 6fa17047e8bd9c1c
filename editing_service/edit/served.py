"""The served ablation of a set of features ({site: indices}), as every edit row builds it.

TopK SAEs are served through per-feature JumpReLU thresholds or through the token-cut gate, fitted on
the training tokens; the fit of each site is memoised by the caller (`served`), so the SHIFT row, the
baselines and the budget curve share it. `alive_features` is what a random draw is taken from.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from editing_service.activations import ActivationCache
from editing_service.edit.ablation import AblationMode, FeatureAblation
from editing_service.model import TextClassifier
from editing_service.sae import SAE, TopKGate, TopKSAE, fit_topk_gate, topk_to_jumprelu

ServedSAE = tuple[SAE, TopKGate | None]
ServedForm = Literal["jumprelu", "gate"]  # how a TopK SAE's flagged features are served


def served_sae(sae: SAE, cache: ActivationCache, site: str, form: ServedForm) -> ServedSAE:
    """How a site's flagged features are served: ReLU / JumpReLU SAEs as they are; TopK SAEs through
    per-feature JumpReLU thresholds or through the token-cut gate (`form`), fitted on the cached tokens."""
    if not isinstance(sae, TopKSAE):
        return sae, None
    if form == "gate":
        return sae, fit_topk_gate(sae, cache.site(site), n_sample=16384)
    return topk_to_jumprelu(sae, cache.site(site), n_sample=8192), None


def served_form_name(saes: dict[str, SAE], sites: list[str], form: ServedForm) -> str:
    """What the report names the served form of an edit at `sites`: `form` when one of their SAEs is TopK,
    else "exact" (ReLU and JumpReLU SAEs, BatchTopK's included, are served as they are)."""
    return form if any(isinstance(saes[site], TopKSAE) for site in sites) else "exact"


def alive_features(sae: SAE, cache: ActivationCache, site: str, n_rows: int = 16384) -> np.ndarray:
    """[d_sae] bool: features that fire on a seeded sample of the cached tokens."""
    rows = np.random.default_rng(0).choice(cache.n_tokens, size=min(n_rows, cache.n_tokens), replace=False)
    with torch.no_grad():
        f = sae.encode(torch.from_numpy(cache.read(site, np.sort(rows))).to(sae.W_enc.device))
    return (f > 0).any(0).cpu().numpy()


def build_ablations(
    classifier: TextClassifier, saes: dict[str, SAE], features: dict[str, list[int]], cache: ActivationCache,
    *, mode: AblationMode, form: ServedForm, served: dict[str, ServedSAE] | None = None,
) -> list[FeatureAblation]:
    """The served ablation of `features` ({site: indices}) at every site that has some.

    `served` memoises each site's served form (the TopK conversion's fit) across calls.
    """
    served = {} if served is None else served
    sites = {s.name: s for s in classifier.resolve_sites(list(features))}
    edits = []
    for name, indices in features.items():
        if not indices:
            continue
        if name not in served:
            served[name] = served_sae(saes[name], cache, name, form)
        sae, gate = served[name]
        ablation = FeatureAblation.from_sae(sites[name], sae, indices, gate=gate)
        if mode == "mean":
            with torch.no_grad():
                acts = ablation.activations(torch.from_numpy(cache.read(name)).to(ablation.W_enc.device))
            ablation = FeatureAblation.from_sae(sites[name], sae, indices, mode="mean", gate=gate,
                                                mean=acts.mean(0).cpu().numpy())
        edits.append(ablation)
    return edits
