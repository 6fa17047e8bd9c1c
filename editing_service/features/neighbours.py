"""Decoder-cosine neighbours: the features of the same SAE that write the most similar directions.

Redundant features (high cosine) matter for editing: ablating one of a redundant set does little.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def unit_rows(W_dec: torch.Tensor | np.ndarray) -> np.ndarray:
    """[d_sae, d_in] float32 decoder rows scaled to unit norm (zero rows stay zero)."""
    w = W_dec.detach().float().cpu().numpy() if isinstance(W_dec, torch.Tensor) else np.asarray(W_dec, np.float32)
    norms = np.linalg.norm(w, axis=1, keepdims=True)
    return w / np.maximum(norms, 1e-12)


def decoder_neighbours(
    W_dec: torch.Tensor | np.ndarray, features: Sequence[int], *, k: int = 5
) -> list[list[tuple[int, float]]]:
    """For every feature, the `k` other features with the largest decoder cosine, as (feature, cosine),
    largest first (ties by feature id)."""
    unit = unit_rows(W_dec)
    ids = np.asarray(features, dtype=np.int64)
    if ids.size == 0:
        return []
    sims = unit[ids] @ unit.T  # [F, d_sae]
    sims[np.arange(ids.size), ids] = -np.inf
    k = min(k, unit.shape[0] - 1)
    out = []
    for row in sims:
        order = np.lexsort((np.arange(row.size), -row))[:k]
        out.append([(int(j), float(row[j])) for j in order])
    return out
