"""BatchTopK SAE (Bussmann et al. 2024): keep the k x batch largest pre-activations of a whole batch.

Training selects over the batch, not per token, so a hard token may use more than k features and an easy one
fewer, at the same mean L0 (k). At inference a batch is not available: after training, one threshold theta is
calibrated on a token sample so that z > theta fires k features per token on average, and the fitted SAE is
the JumpReLU SAE with that threshold for every feature (`inference_form`), which is how SAELens saves
BatchTopK SAEs. An edit of it is then served exactly: a JumpReLU feature depends only on its own encoder
column, bias and threshold.

Training sees decoder rows through their directions only (rows start small and free, as for TopK). TopK's
auxiliary-k loss for dead features is supported but off by default: a batch-wide cut leaves rarely used features
dead whether or not it runs, and it doubled the cost of a step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from editing_service.sae.base import SAE, StepOutput, TrainContext
from editing_service.sae.config import SAEConfig
from editing_service.sae.jumprelu import JumpReLUSAE, ThresholdEncoding
from editing_service.sae.registry import register_sae
from editing_service.sae.topk import auxiliary_loss, by_feature, direction_weights

SUBSAMPLE = 16  # every 16th pre-activation estimates the batch's cut


class _PairValues(torch.autograd.Function):
    """values[p] = z[tokens[p], feats[p]] with z = x @ W_enc + b_enc - b_dec @ W_enc (`z` given, no grad), and
    a backward that reads only the chosen pairs."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, W_enc: Tensor, b_enc: Tensor, b_dec: Tensor, tokens: Tensor, feats: Tensor, z: Tensor
    ) -> Tensor:
        ctx.save_for_backward(x, W_enc, b_dec, tokens, feats)
        return z[tokens, feats]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, W_enc, b_dec, tokens, feats = ctx.saved_tensors
        d_sae = W_enc.shape[1]
        grad = grad.to(W_enc.dtype)
        col_sum = torch.zeros(d_sae, dtype=W_enc.dtype, device=W_enc.device).index_add_(0, feats, grad)
        grad_wt = by_feature(feats, tokens, grad, d_sae, x.shape[0]) @ x.to(W_enc.dtype)  # [d_sae, d_in]
        grad_wt -= col_sum[:, None] * b_dec[None, :]  # dz/dW_enc uses x - b_dec
        return None, grad_wt.T.contiguous(), col_sum, -(W_enc @ col_sum), None, None, None


class _PairDecode(torch.autograd.Function):
    """out[t] = sum of values[p] * W_dec[feats[p]] over the pairs p of token t (pairs sorted by token,
    `offsets` [n] the first pair of each token), with a sparse backward for W_dec."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, values: Tensor, tokens: Tensor, feats: Tensor, offsets: Tensor, W_dec: Tensor
    ) -> Tensor:
        ctx.save_for_backward(values, tokens, feats, offsets, W_dec)
        return F.embedding_bag(feats, W_dec, offsets, per_sample_weights=values, mode="sum")  # [n, d_in]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        values, tokens, feats, offsets, W_dec = ctx.saved_tensors
        with torch.enable_grad():  # grad_values[p] = grad[t] . W_dec[feats[p]]: embedding_bag's own kernel
            v = values.detach().requires_grad_()
            out = F.embedding_bag(feats, W_dec.detach(), offsets, per_sample_weights=v, mode="sum")
            (grad_values,) = torch.autograd.grad(out, v, grad)
        grad_w = by_feature(feats, tokens, values.to(grad.dtype), W_dec.shape[0], grad.shape[0]) @ grad
        return grad_values, None, None, None, grad_w


class BatchTopKSAE(ThresholdEncoding, SAE):
    """BatchTopK SAE; `cfg.k` features per token on average; `threshold` [d_sae] (one value) for inference."""

    architecture = "batchtopk"
    unit_norm_decoder = False
    uses_k = True
    uses_aux_loss = True
    # Off unless asked for: on the embedded MiniLM's sites it halved the step rate and revived nothing (held-out
    # FVU equal within 0.0005; BENCHMARKS.md, "BatchTopK without the auxiliary-k loss").
    default_aux_coefficient = 0.0

    def __init__(self, cfg: SAEConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator=generator)
        self.register_buffer("threshold", torch.zeros(cfg.d_sae, dtype=cfg.torch_dtype,
                                                      device=torch.device(cfg.device)))

    @property
    def k(self) -> int:
        assert self.cfg.k is not None  # guaranteed by SAEConfig validation
        return self.cfg.k

    def _select(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The batch's k * n largest pre-activations of z [n, d_sae] as pairs sorted by token: (tokens [P],
        feats [P], offsets [n]: each token's first pair).

        Exact without sorting all n * d_sae values: a low cut is read off every SUBSAMPLE-th value (with a
        margin), every value above it joins a pool, and the (k * n)-th largest of the pool is the cut; when
        fewer than k * n values pass the low cut, the margin doubles.
        """
        n, d_sae = z.shape
        need = self.k * n
        flat = z.reshape(-1)
        sample = flat[::SUBSAMPLE]
        margin = 1.25
        while True:
            rank = min(int(margin * need / SUBSAMPLE) + 1, sample.numel())
            low = sample.kthvalue(sample.numel() - rank + 1).values if rank < sample.numel() else flat.min()
            pool = (flat >= low).nonzero().squeeze(1)
            if pool.numel() >= need:
                break
            margin *= 2
        values = flat[pool]
        theta = values.kthvalue(values.numel() - need + 1).values
        chosen = pool[values >= theta]  # sorted: nonzero returns indices in order
        tokens, feats = chosen // d_sae, chosen % d_sae
        offsets = torch.searchsorted(tokens, torch.arange(n, device=z.device))
        return tokens, feats, offsets

    def training_loss(self, x: Tensor, ctx: TrainContext) -> StepOutput:
        w = direction_weights(self)
        with torch.no_grad():
            z = w.pre_activations(x)  # [n, d_sae]
            tokens, feats, offsets = self._select(z)
        values = _PairValues.apply(x, w.W_enc, w.b_enc, w.b_dec, tokens, feats, z).relu()  # [P]
        x_hat = _PairDecode.apply(values, tokens, feats, offsets, w.W_dec) + w.b_dec
        err = x - x_hat
        mse = err.pow(2).sum(-1).mean()
        aux = auxiliary_loss(x, z, err, ctx, w)
        loss = mse + aux
        with torch.no_grad():
            active = (values > 0).to(x.dtype)  # [P]
            counts = torch.zeros(self.cfg.d_sae, device=x.device, dtype=x.dtype).index_add_(0, feats, active)
            l0 = active.sum() / x.shape[0]
        return StepOutput(loss=loss, mse=mse.detach(), aux=aux.detach(), l0=l0, fired=counts > 0)

    @torch.no_grad()
    def finish_training_(self, sample: Tensor) -> None:
        """Calibrate the inference threshold on `sample` [n, d_in] (the trainer's normalised token sample):
        the (k * n)-th largest rescaled pre-activation, so that z > theta fires k features per token on
        average there."""
        z = direction_weights(self).pre_activations(sample.to(self.dtype)).relu()
        theta = z.reshape(-1).kthvalue(z.numel() - self.k * sample.shape[0] + 1).values
        self.threshold.fill_(float(theta))

    @torch.no_grad()
    def fold_input_scale_(self, scale: float) -> None:
        super().fold_input_scale_(scale)
        self.threshold.div_(scale)

    # Training already read z through unit-norm rows: once `fold_decoder_norm_` makes the rows unit norm,
    # the plain z equals the rescaled z the threshold was calibrated on, so the threshold stays.

    def inference_form(self) -> SAE:
        """The JumpReLU SAE computing what this SAE computes at inference (same weights, the threshold)."""
        meta = {**self.cfg.metadata, "trained_as": self.architecture, "k": self.k}
        cfg = SAEConfig.from_dict({**self.cfg.to_dict(), "architecture": JumpReLUSAE.architecture, "k": None,
                                   "metadata": meta})
        out = JumpReLUSAE(cfg)
        for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
            getattr(out, name).data.copy_(getattr(self, name).data)
        out.threshold = nn.Parameter(self.threshold.detach().clone())
        return out


register_sae("batchtopk", BatchTopKSAE)
