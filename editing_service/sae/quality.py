"""Reconstruction quality of an SAE on activations: FVU, L0, dead fraction, mean L2 error.

(How much of the classifier's accuracy survives with the reconstruction spliced in is measured where the
model lives, not here.)
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict

from editing_service.sae.base import SAE
from editing_service.sae.data import ActivationArray, check_activations, read_rows
from editing_service.sae.topk import TopKSAE


class SAEQuality(BaseModel):
    """An SAE's reconstruction quality on one set of tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fvu: float | None  # sum ||x - x_hat||^2 / sum ||x - mean(x)||^2; None when the tokens have no variance
    l0: float  # mean active features per token
    dead_fraction: float  # share of features that never fire on these tokens
    mean_l2_error: float  # mean ||x - x_hat||
    n_tokens: int


@torch.no_grad()
def sae_quality(sae: SAE, activations: ActivationArray, *, batch_size: int = 4096) -> SAEQuality:
    """Quality of `sae` on `activations` [n_tokens, d_in], read in order in batches."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_tokens, d_in = check_activations(activations, d_in=sae.d_in)
    device = sae.device
    acc = torch.float64
    sum_x = torch.zeros(d_in, dtype=acc, device=device)
    sum_x2 = torch.zeros((), dtype=acc, device=device)
    sum_err2 = torch.zeros((), dtype=acc, device=device)
    sum_err = torch.zeros((), dtype=acc, device=device)
    n_active = torch.zeros((), dtype=acc, device=device)
    fires = torch.zeros(sae.d_sae, dtype=torch.bool, device=device)
    shift: torch.Tensor | None = None  # first batch's mean: keeps the variance sums well conditioned
    for start in range(0, n_tokens, batch_size):
        x = read_rows(activations, slice(start, start + batch_size), device=device, dtype=sae.dtype)
        if isinstance(sae, TopKSAE):
            values, indices = sae.encode_topk(x)  # [n, k]
            x_hat = sae.decode_sparse(values, indices)
            active = values > 0
            fires[indices[active]] = True
        else:
            f = sae.encode(x)  # [n, d_sae]
            x_hat = sae.decode(f)
            active = f > 0
            fires |= active.any(0)
        err2 = (x - x_hat).to(acc).pow(2).sum(-1)  # [n]
        xd = x.to(acc)
        if shift is None:
            shift = xd.mean(0)
        xd = xd - shift
        sum_x += xd.sum(0)
        sum_x2 += xd.pow(2).sum()
        sum_err2 += err2.sum()
        sum_err += err2.sqrt().sum()
        n_active += active.sum()
    total_var = sum_x2 - sum_x.pow(2).sum() / n_tokens  # sum ||x - mean||^2 (shift-invariant)
    fvu = float(sum_err2 / total_var) if total_var > 0 else None
    return SAEQuality(fvu=fvu, l0=float(n_active / n_tokens), dead_fraction=float((~fires).float().mean()),
                      mean_l2_error=float(sum_err / n_tokens), n_tokens=n_tokens)
