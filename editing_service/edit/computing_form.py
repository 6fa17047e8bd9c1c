"""The arithmetic a site's served edit runs in place under inference mode: the flagged features' ablation
(with its TopK gate) and, when one follows it at the site, the LEACE eraser, in three steps.

On a CPU at batch 1 a served edit costs what its ops cost to launch, not what they compute (products of
width d x about 50 and a rank-1 eraser), so everything is folded into one encoder product, one cut and
one decoder product. With z = x W_enc' + b (the flagged features' pre-activations, b_dec folded into
the bias), f the features' codes after the cut, m the ablated value and the eraser
x <- x - ((x - b_e) R^T) L^T applied after the ablation x1 = x - (f - m) W_dec:

    x2 = x - f (W_dec - W_dec R^T L^T) - c L^T + m W_dec,   c = x R^T + (m W_dec - b_e) R^T

so the eraser's coordinates c come from the same product as z and its directions join the decoder
rows. A gated TopK feature fires where z_i > 0 and z_i - tau(x) > offset_i, tau(x) = x . w + g ||x|| +
beta: the product also gives x . w + beta, to which g ||x|| is added. The columns are padded to a
multiple of 16, which the CPU matrix kernels run much faster than odd widths, with zero decoder rows
for the gate's column and the padding:

    [u = z, or z / theta for JumpReLU thresholds (n) | c (r) | x . w + beta (gated) | 0 ...]
        -> cut u  ->  x -= product @ [W_dec'; L^T; 0]

Eight ops per pass when gated, three or four otherwise (one encoder product, the cut, one decoder
product; mean ablation adds one).
"""

from __future__ import annotations

import torch
from torch import nn

_PAD = 16  # the product's width is padded to a multiple of this


def _padded(width: int) -> int:
    return width + (-width % _PAD)


def _pad_columns(t: torch.Tensor, width: int) -> torch.Tensor:
    """`t` [..., w] padded with zeros to [..., width]."""
    return torch.cat([t, t.new_zeros(*t.shape[:-1], width - t.shape[-1])], -1)


class ComputingForm(nn.Module):
    """The folded buffers of one site's served edit and its in-place `rewrite_` (see the module doc).

    Built from a `FeatureAblation` and, optionally, the `ConceptErasure` that follows it at the site; the
    buffers are not saved (the edit's own tensors are) and follow the module across devices.
    """

    def __init__(self, ablation: nn.Module, erasure: nn.Module | None = None) -> None:
        super().__init__()
        a = ablation
        theta = a.threshold.clamp(min=0)
        self.gated = bool(a.gated)
        self.cut: float | None  # one scalar cut on every column (u = z / theta cut at 1, or z cut at 0), or per feature
        if self.gated or bool((theta == 0).all()):
            scale, self.cut = torch.ones_like(theta), 0.0
        elif bool((theta > 0).all()):
            scale, self.cut = theta, 1.0
        else:
            scale, self.cut = torch.ones_like(theta), None
        self.n = a.W_enc.shape[1]
        z_bias = a.b_enc - a.b_dec @ a.W_enc  # z = x W_enc + z_bias
        mean_decoded = a.mean @ a.W_dec if a.mode == "mean" else None
        dec = a.W_dec * scale[:, None]
        columns, biases, rows = [a.W_enc / scale], [z_bias / scale], [dec]
        if erasure is not None:
            right, left = erasure.proj_right.T, erasure.proj_left.T  # [d, r], [r, d]
            shift = -erasure.bias if mean_decoded is None else mean_decoded - erasure.bias
            columns.append(right)
            biases.append(shift @ right)
            rows = [dec - (dec @ right) @ left, left]
        self.tau_column = sum(c.shape[1] for c in columns)
        self.gate_norm = 0.0
        if self.gated:
            self.gate_norm = float(a.gate_norm[0])
            columns.append(a.gate_weight[:, None])
            biases.append(a.gate_bias.reshape(1))
            self.register_buffer("gate_offset", a.gate_offset.clone(), persistent=False)
        width = _padded(sum(c.shape[1] for c in columns))
        weight = _pad_columns(torch.cat(columns, 1), width)
        rows.append(weight.new_zeros(width - sum(r.shape[0] for r in rows), weight.shape[0]))
        self.register_buffer("weight", weight.contiguous(), persistent=False)
        self.register_buffer("bias", _pad_columns(torch.cat(biases), width), persistent=False)
        self.register_buffer("decoder", torch.cat(rows).contiguous(), persistent=False)
        self.register_buffer("threshold", theta, persistent=False)
        self.register_buffer("mean_decoded", mean_decoded if mean_decoded is not None else a.b_dec.new_zeros(0),
                             persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.weight.dtype

    def rewrite_(self, x: torch.Tensor) -> torch.Tensor:
        """x rewritten in place ([..., d], contiguous, of `dtype`, under inference mode)."""
        flat = x.view(-1, x.shape[-1])
        product = torch.addmm(self.bias, flat, self.weight)  # [tokens, width]
        u = product[:, : self.n]
        # Masked fills, not products with a boolean mask: each op is a kernel launch on a GPU, and a
        # boolean factor adds a conversion.
        if self.gated:
            tau = product[:, self.tau_column : self.tau_column + 1]
            if self.gate_norm:
                tau.add_(torch.linalg.vector_norm(flat, dim=1, keepdim=True), alpha=self.gate_norm)
            u.masked_fill_((u - tau) <= self.gate_offset, 0.0).relu_()  # fires: past the gate, and > 0
        elif self.cut is None:
            u.masked_fill_(u <= self.threshold, 0.0)
        else:
            torch.nn.functional.threshold_(u, self.cut, 0.0)
        flat.addmm_(product, self.decoder, alpha=-1)  # the gate's column and the padding meet zero rows
        if self.mean_decoded.numel():
            flat.add_(self.mean_decoded)
        return x
