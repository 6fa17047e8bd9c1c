"""TopK -> JumpReLU: per-feature thresholds so that a TopK feature can be served from its own row alone.

TopK fires feature i on token t when z_ti is among the token's k largest (and positive): a threshold that
changes from token to token. A JumpReLU fires it when z_ti > theta_i. Where both fire the values are the
same (z_ti), so the codes differ only where the two disagree. On a sample of activations we pick, for each
feature, the cut of its sorted pre-activations that minimises the L1 distance between the two codes: the
summed values of the extra firings plus those of the missed ones (a one-dimensional decision stump weighted
by activation size, so a small activation left out costs little). method="min" instead takes the smallest
value the feature had when TopK kept it: every TopK firing is kept (recall 1) at the price of many extra
firings. Features that never fire in the sample get an unreachable threshold.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from editing_service.sae.config import SAEConfig
from editing_service.sae.data import ActivationArray, check_activations, sample_rows
from editing_service.sae.jumprelu import JumpReLUSAE
from editing_service.sae.topk import TopKSAE

logger = logging.getLogger(__name__)


@torch.no_grad()
def _stump_thresholds(z: Tensor, fired: Tensor, block: int = 256, *, key: Tensor | None = None) -> Tensor:
    """Per column of z [n, d_sae], the cut between sorted values that minimises the L1 code difference.

    With `key` (same shape) the cut is on the key's values instead (fire where key > cut), the cost still
    weighted by the code values z."""
    key = z if key is None else key
    n, d_sae = z.shape
    out = torch.empty(d_sae, dtype=z.dtype, device=z.device)
    for c in range(0, d_sae, block):
        vals, order = key[:, c : c + block].sort(dim=0, descending=True)  # [n, b]
        pos = fired[:, c : c + block].gather(0, order)
        w = z[:, c : c + block].gather(0, order).clamp_min(0.0).double()
        zero = torch.zeros_like(w[:1])
        # cost when the top j values fire (j = 0: never): the values of the extra firings plus those of the
        # missed ones, i.e. the L1 distance between the JumpReLU and TopK codes of this feature.
        cum_fp = torch.cat([zero, (w * ~pos).cumsum(0)])  # [n + 1, b]
        cum_tp = torch.cat([zero, (w * pos).cumsum(0)])
        errors = cum_fp + (cum_tp[-1:] - cum_tp)
        best = errors.argmin(0)  # [b], first minimum: the smallest firing set among the best
        upper = vals.gather(0, (best - 1).clamp_min(0)[None])[0]  # last value kept
        lower = vals.gather(0, best.clamp_max(n - 1)[None])[0]  # first value dropped
        theta = torch.where(best >= n, lower - 1e-6 * lower.abs().clamp_min(1.0), (upper + lower) / 2)
        out[c : c + block] = torch.where(best == 0, torch.full_like(theta, torch.finfo(z.dtype).max), theta)
    return out


@torch.no_grad()
def topk_to_jumprelu(
    sae: TopKSAE,
    activations: ActivationArray,
    *,
    n_sample: int = 16384,
    method: Literal["l1", "min"] = "l1",
    seed: int = 0,
) -> JumpReLUSAE:
    """A JumpReLU SAE with the TopK SAE's weights and per-feature thresholds fitted on a sample.

    The agreement reached on the sample is stored in `cfg.metadata["topk_conversion"]`: precision and recall
    of the JumpReLU active set against the TopK one, and both L0s.
    """
    if not isinstance(sae, TopKSAE):
        raise TypeError(f"topk_to_jumprelu needs a TopKSAE, got {type(sae).__name__}")
    if method not in ("l1", "min"):
        raise ValueError(f"method must be 'l1' or 'min', got {method!r}")
    check_activations(activations, d_in=sae.d_in)
    x = sample_rows(activations, n_sample, np.random.default_rng(seed), device=sae.device, dtype=sae.dtype)
    z = sae.pre_activations(x)  # [n, d_sae]
    values, indices = z.topk(sae.k, dim=1, sorted=False)
    fired = torch.zeros_like(z, dtype=torch.bool).scatter_(1, indices, values > 0)  # TopK active set
    if method == "l1":
        theta = _stump_thresholds(z, fired).clamp_min(0.0)
    else:
        kept = torch.where(fired, z, torch.full_like(z, torch.finfo(z.dtype).max))
        theta = torch.nextafter(kept.amin(0), torch.zeros(()).to(z))  # z > theta keeps the minimum
    cfg_dict = sae.cfg.to_dict() | {"architecture": "jumprelu", "k": None}
    cfg_dict["metadata"] = copy.deepcopy(sae.cfg.metadata)
    out = JumpReLUSAE(SAEConfig.from_dict(cfg_dict))
    out.load_state_dict({**sae.state_dict(), "threshold": theta})
    jump = out.encode(x) > 0
    both = float((jump & fired).sum())
    stats = {
        "method": method,
        "n_tokens": int(x.shape[0]),
        "precision": both / max(float(jump.sum()), 1.0),
        "recall": both / max(float(fired.sum()), 1.0),
        "l0_topk": float(fired.sum(1).float().mean()),
        "l0_jumprelu": float(jump.sum(1).float().mean()),
    }
    out.cfg.metadata["topk_conversion"] = stats
    logger.info(
        "topk -> jumprelu on %d tokens: precision %.3f recall %.3f",
        stats["n_tokens"],
        stats["precision"],
        stats["recall"],
    )
    return out


@dataclass(frozen=True)
class TopKGate:
    """A served form of TopK features closer to TopK than per-feature thresholds: feature i fires where
    z_i > 0 and z_i - tau(x) > offset_i, with tau(x) = x . weight + norm ||x|| + bias an estimate of the
    token's TopK cut (midway between its k-th and (k+1)-th largest pre-activations). tau costs one dot
    product and one norm per token."""

    weight: Tensor  # [d_in]
    norm: float
    bias: float
    offset: Tensor  # [d_sae]

    def tau(self, x: Tensor) -> Tensor:
        return x @ self.weight.to(x.dtype) + self.norm * torch.linalg.vector_norm(x, dim=-1) + self.bias

    def fires(self, z: Tensor, x: Tensor) -> Tensor:
        return (z > 0) & (z - self.tau(x)[..., None] > self.offset.to(z.dtype))


@torch.no_grad()
def fit_topk_gate(sae: TopKSAE, activations: ActivationArray, *, n_sample: int = 16384, ridge: float = 1e-3,
                  seed: int = 0) -> TopKGate:
    """Fit tau(x) by ridge least squares on the TopK cut of a sample of tokens, then each feature's offset
    by the L1 stump of `topk_to_jumprelu` on z_i - tau(x)."""
    if not isinstance(sae, TopKSAE):
        raise TypeError(f"fit_topk_gate needs a TopKSAE, got {type(sae).__name__}")
    check_activations(activations, d_in=sae.d_in)
    x = sample_rows(activations, n_sample, np.random.default_rng(seed), device=sae.device, dtype=sae.dtype)
    z = sae.pre_activations(x)
    values, indices = z.topk(min(sae.k + 1, sae.d_sae), dim=1, sorted=True)
    fired = torch.zeros_like(z, dtype=torch.bool).scatter_(1, indices[:, : sae.k], values[:, : sae.k] > 0)
    cut = values[:, sae.k - 1 : sae.k + 1].mean(1).double()
    ones = torch.ones(len(x), 1, dtype=torch.float64, device=x.device)
    design = torch.cat([x.double(), torch.linalg.vector_norm(x.double(), dim=1, keepdim=True), ones], 1)
    gram = design.T @ design + ridge * len(x) * torch.eye(design.shape[1], dtype=torch.float64, device=x.device)
    solution = torch.linalg.solve(gram, design.T @ cut)
    gate = TopKGate(weight=solution[:-2].to(z.dtype), norm=float(solution[-2]), bias=float(solution[-1]),
                    offset=torch.zeros(sae.d_sae, dtype=z.dtype, device=z.device))
    key = z - gate.tau(x)[:, None]
    offset = _stump_thresholds(z, fired, key=torch.where(z > 0, key, torch.full_like(key, -torch.inf)))
    return TopKGate(weight=gate.weight, norm=gate.norm, bias=gate.bias, offset=offset)
