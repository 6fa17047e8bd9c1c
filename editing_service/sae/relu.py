"""ReLU SAE trained with an L1 penalty (Cunningham et al. 2023; SAELens "standard").

f = ReLU((x - b_dec) @ W_enc + b_enc). Training loss: ||x - x_hat||^2 + l1 * sum_i f_i * ||W_dec[i]||; the
decoder-norm weighting (Anthropic, April 2024 update) makes the penalty scale-free, so the decoder rows are
left unconstrained.
"""

from __future__ import annotations

import torch
from torch import Tensor

from editing_service.sae.base import SAE, StepOutput, TrainContext
from editing_service.sae.registry import register_sae


class ReLUSAE(SAE):
    """ReLU + L1 SAE."""

    architecture = "relu"
    unit_norm_decoder = False

    def encode(self, x: Tensor) -> Tensor:
        return self.pre_activations(x).relu()  # [..., d_sae]

    def encode_columns(self, x: Tensor, columns: Tensor) -> Tensor:
        return self.pre_activations(x, columns).relu()  # [..., c]

    def training_loss(self, x: Tensor, ctx: TrainContext) -> StepOutput:
        f = self.train_pre_activations(x).relu()  # [n, d_sae]
        x_hat = torch.addmm(self.b_dec, f, self.W_dec)  # [n, d_in]
        mse = (x - x_hat).pow(2).sum(-1).mean()
        l1 = (f @ self.W_dec.norm(dim=1)).mean()  # mean over tokens of sum_i f_i ||W_dec[i]||
        aux = self.cfg.l1_coefficient * ctx.sparsity_scale * l1
        with torch.no_grad():
            active = f > 0
            l0 = active.sum(-1).to(x.dtype).mean()
            fired = active.any(0)
        return StepOutput(loss=mse + aux, mse=mse.detach(), aux=aux.detach(), l0=l0, fired=fired)


register_sae("relu", ReLUSAE)
