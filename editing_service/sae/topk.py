"""TopK SAE (Gao et al. 2024): keep the k largest pre-activations per token, ReLU them, zero the rest.

Training never builds a dense [batch, d_sae] code: `encode_topk` returns (values, indices) [n, k] whose
backward pass touches only the selected encoder columns (a sparse product instead of a dense one), and
`decode_sparse` sums only the k selected decoder rows with `embedding_bag`. Dead features are revived by the
auxiliary-k loss: the top `aux_k` dead features reconstruct the residual the live ones left.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from editing_service.sae.base import SAE, StepOutput, TrainContext
from editing_service.sae.registry import register_sae


def by_feature(feats: Tensor, tokens: Tensor, values: Tensor, d_sae: int, n: int) -> Tensor:
    """The sparse matrix S [d_sae, n] with S[feats[p], tokens[p]] = values[p] over (token, feature) pairs p,
    in CSR layout.

    `S @ dense` (dense [n, d]) sums, for every feature, the rows of the tokens that selected it: the
    encoder and decoder weight gradients of a sparse step, at O(pairs * d) instead of O(n * d_sae * d).
    """
    order = torch.argsort(feats)
    index_dtype = torch.int32 if feats.numel() < 2**31 else torch.int64
    crow = torch.zeros(d_sae + 1, dtype=index_dtype, device=feats.device)
    crow[1:] = torch.bincount(feats, minlength=d_sae).cumsum(0)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we use only its matmul
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            crow, tokens[order].to(index_dtype), values[order], size=(d_sae, n), check_invariants=False
        )


def _by_feature(indices: Tensor, values: Tensor, d_sae: int) -> Tensor:
    """`by_feature` of TopK's selection: S[indices[t, j], t] = values[t, j]."""
    n, n_sel = indices.shape
    tokens = torch.arange(n, device=indices.device).repeat_interleave(n_sel)
    return by_feature(indices.reshape(-1), tokens, values.reshape(-1), d_sae, n)


class _GatherPreActivations(torch.autograd.Function):
    """values[t, j] = z[t, indices[t, j]] with z = x @ W_enc + b_enc - b_dec @ W_enc, and a sparse backward.

    `z` (no grad) is passed in to avoid recomputing it; the backward reads only the selected columns.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, W_enc: Tensor, b_enc: Tensor, b_dec: Tensor, indices: Tensor, z: Tensor
    ) -> Tensor:
        ctx.save_for_backward(x, W_enc, b_dec, indices)
        return z.gather(1, indices)  # [n, J]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, W_enc, b_dec, indices = ctx.saved_tensors
        d_sae = W_enc.shape[1]
        grad = grad.to(W_enc.dtype)
        col_sum = torch.zeros(d_sae, dtype=W_enc.dtype, device=W_enc.device)
        col_sum.index_add_(0, indices.reshape(-1), grad.reshape(-1))  # [d_sae] = grad of b_enc
        grad_x = grad_w = grad_b_dec = None
        if ctx.needs_input_grad[1]:
            grad_wt = _by_feature(indices, grad, d_sae) @ x.to(W_enc.dtype)  # [d_sae, d_in] = G^T x
            grad_wt -= col_sum[:, None] * b_dec[None, :]  # dz/dW_enc uses x - b_dec
            grad_w = grad_wt.T.contiguous()
        if ctx.needs_input_grad[3]:
            grad_b_dec = -(W_enc @ col_sum)  # [d_in]
        if ctx.needs_input_grad[0]:
            grad_x = F.embedding_bag(indices, W_enc.T.contiguous(), per_sample_weights=grad, mode="sum")
        return grad_x, grad_w, col_sum, grad_b_dec, None, None


class _SparseDecode(torch.autograd.Function):
    """out[t] = sum_j values[t, j] * W_dec[indices[t, j]] (no bias), with a sparse backward for W_dec."""

    @staticmethod
    def forward(ctx: Any, values: Tensor, indices: Tensor, W_dec: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(values, indices, W_dec)
        return F.embedding_bag(indices, W_dec, per_sample_weights=values, mode="sum")  # [n, d_in]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        values, indices, W_dec = ctx.saved_tensors
        grad_values = grad_w = None
        if ctx.needs_input_grad[0]:
            # grad_values[t, j] = grad[t] . W_dec[indices[t, j]]: embedding_bag's own kernel for it.
            with torch.enable_grad():
                v = values.detach().requires_grad_()
                out = F.embedding_bag(indices, W_dec.detach(), per_sample_weights=v, mode="sum")
                (grad_values,) = torch.autograd.grad(out, v, grad)
        if ctx.needs_input_grad[2]:
            grad_w = _by_feature(indices, values.to(grad.dtype), W_dec.shape[0]) @ grad  # [d_sae, d_in]
        return grad_values, None, grad_w


class Weights(NamedTuple):
    """The weights one pass uses: the parameters themselves, or their decoder-norm rescaled version."""

    W_enc: Tensor  # [d_in, d_sae]
    b_enc: Tensor  # [d_sae]
    b_dec: Tensor  # [d_in]
    W_dec: Tensor  # [d_sae, d_in]

    def pre_activations(self, x: Tensor, out: Tensor | None = None) -> Tensor:
        """z = x @ W_enc + (b_enc - b_dec @ W_enc) for x [n, d_in], into `out` [n, d_sae] if given."""
        return torch.addmm(self.b_enc - self.b_dec @ self.W_enc, x, self.W_enc, out=out)


def direction_weights(sae: SAE) -> Weights:
    """The weights of training through decoder directions only (SAELens's `rescale_acts_by_decoder_norm`):
    z_i scaled by ||W_dec[i]||, decoder rows divided by it."""
    norms = sae.W_dec.norm(dim=1)  # [d_sae]; [d_sae, d_in]-sized work, cheap next to a batch
    return Weights(sae.W_enc * norms, sae.b_enc * norms, sae.b_dec, sae.W_dec / norms[:, None])


class TopKSAE(SAE):
    """TopK SAE; `cfg.k` features are active per token.

    Training (`training_loss`) sees the decoder rows through their directions only, as SAELens's
    `rescale_acts_by_decoder_norm` does: z_i is multiplied by ||W_dec[i]|| and f_i divided by it before
    decoding. The function is then free of the rows' norms, which the trainer starts small (0.1, so Adam
    moves directions quickly) and folds away at the end (`fold_decoder_norm_`); inference uses the
    plain formulas, identical once the rows have unit norm.
    """

    architecture = "topk"
    unit_norm_decoder = False  # rows stay free: training sees only their directions
    uses_k = True
    uses_aux_loss = True
    default_aux_coefficient = 1.0 / 32.0

    @property
    def k(self) -> int:
        assert self.cfg.k is not None  # guaranteed by SAEConfig validation
        return self.cfg.k

    def _plain(self) -> Weights:
        return Weights(self.W_enc, self.b_enc, self.b_dec, self.W_dec)

    def _select(
        self, x2: Tensor, k: int, w: Weights, out: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """(pre-activation values [n, k], indices [n, k], dense z [n, d_sae] or None) of x2 [n, d_in].

        `out` [n, d_sae], if given, receives z (a reused buffer saves a large allocation per step).
        """
        if torch.is_grad_enabled() and (w.W_enc.requires_grad or x2.requires_grad):
            with torch.no_grad():
                z = w.pre_activations(x2, out=out)  # [n, d_sae]
                indices = z.topk(k, dim=1, sorted=False).indices
            values = _GatherPreActivations.apply(x2, w.W_enc, w.b_enc, w.b_dec, indices, z)
            return values, indices, z
        values, indices = ((x2 - w.b_dec) @ w.W_enc + w.b_enc).topk(k, dim=1, sorted=False)
        return values, indices, None

    def encode_topk(self, x: Tensor, k: int | None = None) -> tuple[Tensor, Tensor]:
        """The k active features of each token: (values [..., k] >= 0, indices [..., k] int64), unsorted.

        With gradients enabled the values carry a sparse backward to W_enc, b_enc, b_dec (and x).
        """
        k = self.k if k is None else k
        x = self.check_input(x)
        lead = x.shape[:-1]
        values, indices, _ = self._select(x.reshape(-1, self.cfg.d_in), k, self._plain())
        return values.relu().reshape(*lead, k), indices.reshape(*lead, k)

    def decode_sparse(self, values: Tensor, indices: Tensor) -> Tensor:
        """x_hat [..., d_in] from the active features only: sum_j values[j] * W_dec[indices[j]] + b_dec."""
        lead, n_sel = values.shape[:-1], values.shape[-1]
        v2 = values.reshape(-1, n_sel).to(self.dtype)
        out = _SparseDecode.apply(v2, indices.reshape(-1, n_sel), self.W_dec)  # [n, d_in]
        return (out + self.b_dec).reshape(*lead, self.cfg.d_in)

    def encode(self, x: Tensor) -> Tensor:
        values, indices = self.encode_topk(x)
        f = torch.zeros(*values.shape[:-1], self.cfg.d_sae, dtype=values.dtype, device=values.device)
        return f.scatter_(-1, indices, values)  # [..., d_sae]

    @staticmethod
    def aux_reconstruction(x: Tensor, z: Tensor, dead: Tensor, aux_k: int, w: Weights) -> Tensor:
        """sum over the aux_k most active dead features of f_i * W_dec[i] (no b_dec), shape [n, d_in].

        Through the sparse kernels even when every dead feature takes part: BLAS splits the sum of a dense
        product this narrow over threads, so it would round differently at each thread count."""
        with torch.no_grad():
            if dead.numel() <= aux_k:  # every dead feature takes part
                aux_idx = dead.expand(x.shape[0], -1)
            else:
                local = z.index_select(1, dead).topk(aux_k, dim=1, sorted=False).indices
                aux_idx = dead[local]  # [n, aux_k]: the most active dead features of each token
        values = _GatherPreActivations.apply(x, w.W_enc, w.b_enc, w.b_dec, aux_idx, z).relu()
        return _SparseDecode.apply(values, aux_idx, w.W_dec)

    def _workspace(self, x: Tensor) -> Tensor:
        """A [batch, d_sae] buffer kept between training steps: a fresh one each step would cost page
        faults (32 MiB at batch 4096, d_sae 2048: above what malloc recycles). Training only."""
        shape = (x.shape[0], self.cfg.d_sae)
        buf = getattr(self, "_z_buffer", None)
        if buf is None or buf.shape != shape or buf.dtype != x.dtype or buf.device != x.device:
            buf = torch.empty(shape, dtype=x.dtype, device=x.device)
            self._z_buffer = buf
        return buf

    def drop_workspace_(self) -> None:
        self._z_buffer = None

    def training_loss(self, x: Tensor, ctx: TrainContext) -> StepOutput:
        k = self.k
        w = direction_weights(self)
        pre, indices, z = self._select(x, k, w, out=self._workspace(x))
        values = pre.relu()  # [n, k]
        x_hat = _SparseDecode.apply(values, indices, w.W_dec) + w.b_dec
        err = x - x_hat
        mse = err.pow(2).sum(-1).mean()
        aux = auxiliary_loss(x, z, err, ctx, w) if z is not None else torch.zeros_like(mse)
        loss = mse + aux
        with torch.no_grad():
            active = values > 0  # [n, k]
            counts = torch.zeros(self.cfg.d_sae, device=x.device, dtype=x.dtype)
            counts.index_add_(0, indices.reshape(-1), active.reshape(-1).to(x.dtype))
            l0 = active.sum(-1).to(x.dtype).mean()
        return StepOutput(loss=loss, mse=mse.detach(), aux=aux.detach(), l0=l0, fired=counts > 0)


def auxiliary_loss(x: Tensor, z: Tensor, err: Tensor, ctx: TrainContext, w: Weights) -> Tensor:
    """The weighted auxiliary-k loss (a scalar; zero when no feature is dead): the aux_k most active dead
    features reconstruct the residual `err` the live ones left, with decoder rows only (no b_dec).

    Its sums run per token first: torch splits a flat sum over every element between threads, differently
    at each thread count, which would round it, and so every later step, differently."""
    dead = ctx.dead_features
    if dead is None or dead.numel() == 0 or ctx.aux_coefficient <= 0 or ctx.aux_k <= 0:
        return torch.zeros((), dtype=x.dtype, device=x.device)
    residual = err.detach()
    e_hat = TopKSAE.aux_reconstruction(x, z, dead, ctx.aux_k, w)
    squared = (e_hat - residual).pow(2).sum(-1).sum()
    return ctx.aux_coefficient * squared / residual.pow(2).sum(-1).sum().clamp_min(1e-12)


register_sae("topk", TopKSAE)
