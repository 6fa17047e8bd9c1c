"""JumpReLU SAE (Rajamanoharan et al. 2024): f_i = z_i * [z_i > theta_i], one learned threshold per feature.

Feature i depends only on its own encoder column, bias and threshold, so an edit that touches a few features
is cheap to serve. Training minimises ||x - x_hat||^2 + l0 * sum_i H(z_i - theta_i); the step function H has
no useful gradient, so the threshold gets a straight-through pseudo-gradient through a rectangle kernel of
width `jumprelu_bandwidth` (in the units of the normalised activations).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from editing_service.sae.base import SAE, StepOutput, TrainContext
from editing_service.sae.config import SAEConfig
from editing_service.sae.registry import register_sae


def _rectangle(u: Tensor) -> Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class ThresholdEncoding:
    """The encoder of an SAE with a `threshold` [d_sae]: z where it exceeds its feature's threshold, else 0 (JumpReLU,
    and BatchTopK at inference). ReLU'd as well, as SAELens does: identical for thresholds >= 0, safe for foreign
    negative ones. A feature depends on its own column only, so `encode_columns` computes just those."""

    threshold: Tensor
    pre_activations: Any

    def encode(self, x: Tensor) -> Tensor:
        z = self.pre_activations(x)
        return z.relu() * (z > self.threshold).to(z.dtype)  # [..., d_sae]

    def encode_columns(self, x: Tensor, columns: Tensor) -> Tensor:
        z = self.pre_activations(x, columns)
        return z.relu() * (z > self.threshold[columns]).to(z.dtype)  # [..., c]


class _JumpReLU(torch.autograd.Function):
    """z * H(z - theta); d/dz = H(z - theta), d/dtheta = -(theta / eps) K((z - theta) / eps)."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, theta: Tensor, bandwidth: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        return z * (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:  # type: ignore[override]
        z, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_z = grad * (z > theta).to(grad.dtype)
        kernel = _rectangle((z - theta) / eps)  # [n, d_sae]
        grad_theta = (-(theta / eps) * kernel * grad).sum(0)
        return grad_z, grad_theta, None


class _Step(torch.autograd.Function):
    """H(z - theta); no gradient to z, d/dtheta = -(1 / eps) K((z - theta) / eps)."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, theta: Tensor, bandwidth: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None]:  # type: ignore[override]
        z, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_theta = (-(1.0 / eps) * _rectangle((z - theta) / eps) * grad).sum(0)
        return None, grad_theta, None


class JumpReLUSAE(ThresholdEncoding, SAE):
    """JumpReLU SAE with a `threshold` [d_sae] parameter (SAELens name)."""

    architecture = "jumprelu"

    def __init__(self, cfg: SAEConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator=generator)
        self.threshold = nn.Parameter(
            torch.zeros(cfg.d_sae, dtype=cfg.torch_dtype, device=torch.device(cfg.device))
        )

    def training_loss(self, x: Tensor, ctx: TrainContext) -> StepOutput:
        bandwidth = self.cfg.jumprelu_bandwidth
        z = self.train_pre_activations(x)  # [n, d_sae]
        f = _JumpReLU.apply(z, self.threshold, bandwidth)
        x_hat = torch.addmm(self.b_dec, f, self.W_dec)
        mse = (x - x_hat).pow(2).sum(-1).mean()
        l0_soft = _Step.apply(z, self.threshold, bandwidth).sum(-1).mean()
        aux = self.cfg.l0_coefficient * ctx.sparsity_scale * l0_soft
        with torch.no_grad():
            active = f > 0
            l0 = active.sum(-1).to(x.dtype).mean()
            fired = active.any(0)
        return StepOutput(loss=mse + aux, mse=mse.detach(), aux=aux.detach(), l0=l0, fired=fired)

    @torch.no_grad()
    def clamp_parameters_(self) -> None:
        self.threshold.clamp_(min=0.0)

    @torch.no_grad()
    def fold_input_scale_(self, scale: float) -> None:
        super().fold_input_scale_(scale)
        self.threshold.div_(scale)

    @torch.no_grad()
    def _scale_thresholds_(self, factor: Tensor) -> None:
        self.threshold.mul_(factor)


register_sae("jumprelu", JumpReLUSAE)
