"""Mean ablation's values for a run, computed once and kept beside its SAEs (saes/ablation_means.safetensors).

The circuit graph and the report's flagged-circuit numbers both ablate nodes to their training-split means,
which takes an encoder pass over every cached training token at every site. The file records, per site, the
digest of the SAE the means belong to and the cache's token count; a mismatch (SAEs trained again, another
cache, a site it lacks) recomputes and rewrites it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from safetensors import safe_open
from safetensors.torch import save_file

from editing_service.activations import ActivationCache
from editing_service.artifacts import ArtifactDir
from editing_service.circuit.ablation import AblationValues, ablation_values
from editing_service.circuit.graph import Ablation
from editing_service.model.sites import Site
from editing_service.sae import SAE, sae_digest

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1"


def _stamp(artifacts: ArtifactDir, saes: Mapping[Site, SAE], cache: ActivationCache) -> dict[str, str]:
    """What the means depend on: each site's SAE digest and the cache's size."""
    return {"schema_version": SCHEMA_VERSION, "cache_tokens": str(cache.n_tokens),
            **{f"sae:{site.name}": sae_digest(artifacts.sae(site.name)) for site in saes}}


def _read(artifacts: ArtifactDir, saes: Mapping[Site, SAE], stamp: dict[str, str]) -> AblationValues | None:
    path = artifacts.ablation_means
    if not path.is_file():
        return None
    out = AblationValues(features={}, error={}, kind="mean")
    with safe_open(str(path), framework="pt") as handle:
        held = handle.metadata() or {}
        if any(held.get(key) != value for key, value in stamp.items()):  # the file may hold more sites
            return None
        for site, sae in saes.items():
            for part, by_site in (("features", out.features), ("error", out.error)):
                by_site[site.name] = handle.get_tensor(f"{site.name}/{part}").to(sae.W_dec.device, sae.W_dec.dtype)
    return out


def run_ablation_values(
    artifacts: ArtifactDir, saes: Mapping[Site, SAE], kind: Ablation, cache: ActivationCache,
) -> AblationValues:
    """`ablation_values` of the run's SAEs (saved in `artifacts`) over its training cache, read back from the
    run when it holds the means of these SAEs and this cache."""
    if kind != "mean":
        return ablation_values(saes, kind, cache)
    stamp = _stamp(artifacts, saes, cache)
    kept = _read(artifacts, saes, stamp)
    if kept is not None:
        return kept
    values = ablation_values(saes, kind, cache)
    tensors = {f"{name}/{part}": tensor.detach().cpu().contiguous()
               for part, by_site in (("features", values.features), ("error", values.error))
               for name, tensor in by_site.items()}
    partial = artifacts.ablation_means.with_suffix(".partial")
    save_file(tensors, str(partial), metadata=stamp)
    os.replace(partial, artifacts.ablation_means)
    logger.info("Mean ablation values of %d sites written to %s", len(saes), artifacts.ablation_means)
    return values
