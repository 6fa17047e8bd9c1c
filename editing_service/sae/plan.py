"""A trainer's hyperparameters resolved against the data: sizes, step counts, schedules, the optimiser.

`make_plan` turns the keyword arguments of `SAETrainer` (many of them "None = pick for me") into concrete
numbers once the activations' size is known, validating each; the plan then answers the per-step questions
(learning-rate factor, sparsity warm-up) without any further branching in the training loop.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch

from editing_service.sae.config import normalize_dtype_name
from editing_service.sae.registry import get_sae_class

logger = logging.getLogger(__name__)

ERR_K_RANGE = "k must be an integer with 1 <= k <= d_sae ({d_sae}), got {k}"
B_DEC_INITS = ("geometric_median", "mean", "zeros")


@dataclass(frozen=True)
class TrainingPlan:
    """Concrete training settings for one fit."""

    d_sae: int
    batch: int  # tokens per step
    n_steps: int
    lr: float
    warmup: int  # linear warm-up steps
    decay: int  # final steps of linear decay to 0
    sparsity_warmup: int  # steps over which the L1 / L0 coefficient ramps up
    aux_k: int
    dead_window: int  # tokens without firing after which a feature counts as dead
    bandwidth: float
    decoder_init_norm: float | None  # None: the architecture's default
    dtype: str

    def lr_at(self, step: int) -> float:
        """Learning rate of step `step` (0-based): linear warm-up, constant, linear decay to 0."""
        factor = min(1.0, (step + 1) / self.warmup) if self.warmup > 0 else 1.0
        if self.decay > 0 and step >= self.n_steps - self.decay:
            factor *= (self.n_steps - step) / (self.decay + 1)
        return self.lr * factor

    def sparsity_scale(self, step: int) -> float:
        return min(1.0, (step + 1) / max(1, self.sparsity_warmup))


def make_plan(params: dict[str, Any], n_data: int, d_in: int) -> TrainingPlan:
    """Resolve and validate the trainer's hyperparameters `params` for data of shape [n_data, d_in]."""
    get_sae_class(params["architecture"])  # ValueError naming the known architectures
    d_sae = params["d_sae"] if params["d_sae"] is not None else params["expansion_factor"] * d_in
    if isinstance(d_sae, bool) or not isinstance(d_sae, int) or d_sae < 1:
        raise ValueError(f"d_sae must be a positive integer, got {d_sae!r}")
    k = params["k"]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= d_sae:
        raise ValueError(ERR_K_RANGE.format(d_sae=d_sae, k=k))
    for name in ("batch_size", "chunk_rows", "sample_size", "log_every"):
        if params[name] < 1:
            raise ValueError(f"{name} must be >= 1, got {params[name]}")
    if params["b_dec_init"] not in B_DEC_INITS:
        raise ValueError(f"b_dec_init must be one of {list(B_DEC_INITS)}, got {params['b_dec_init']!r}")
    for name in ("lr_decay_fraction", "sparsity_warmup_fraction"):
        if not 0.0 <= params[name] <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {params[name]}")
    batch = min(params["batch_size"], n_data)
    if batch < params["batch_size"]:
        logger.warning(
            "only %d tokens: batch_size lowered from %d to %d", n_data, params["batch_size"], batch
        )
    if params["n_tokens"] is not None:
        total = int(params["n_tokens"])
    elif params["n_epochs"] > 0:
        total = round(params["n_epochs"] * n_data)
    else:
        raise ValueError(f"n_epochs must be > 0, got {params['n_epochs']}")
    if total < 1:
        raise ValueError(f"n_tokens must be >= 1, got {total}")
    n_steps = max(1, math.ceil(total / batch))
    lr = params["lr"] if params["lr"] is not None else min(5e-3, 2e-3 * math.sqrt(2048 / d_sae))
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    warmup = params["warmup_steps"] if params["warmup_steps"] is not None else min(1000, n_steps // 20)
    window = params["dead_window"]
    if window is None:
        window = int(min(1_000_000, max(4 * batch, n_steps * batch // 10)))
    bandwidth = params["jumprelu_bandwidth"]
    init_norm = params["decoder_init_norm"]
    if init_norm is not None and init_norm <= 0:
        raise ValueError(f"decoder_init_norm must be > 0, got {init_norm}")
    return TrainingPlan(
        d_sae=d_sae,
        batch=batch,
        n_steps=n_steps,
        lr=lr,
        warmup=max(0, warmup),
        decay=int(params["lr_decay_fraction"] * n_steps),
        sparsity_warmup=int(params["sparsity_warmup_fraction"] * n_steps),
        aux_k=params["aux_k"] if params["aux_k"] is not None else min(256, max(1, d_in // 2)),
        dead_window=window,
        bandwidth=bandwidth if bandwidth is not None else 0.001 * math.sqrt(d_in),
        decoder_init_norm=init_norm,
        dtype=normalize_dtype_name(params["dtype"]),
    )


def make_adam(params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """Adam (betas 0.9, 0.999); the fused kernel when the device supports it."""
    try:
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), fused=True)
    except (RuntimeError, ValueError):
        logger.debug("fused Adam unavailable here; using the foreach kernel")
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), foreach=True)


@torch.no_grad()
def remove_radial_grad_(w_dec: torch.nn.Parameter) -> None:
    """Drop the gradient component parallel to each (unit) decoder row: the step then keeps the norm."""
    if w_dec.grad is not None:
        w_dec.grad -= (w_dec.grad * w_dec).sum(1, keepdim=True) * w_dec
