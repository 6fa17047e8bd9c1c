"""The SAE ends of an edge, in closed form: what a VJP through the encoder and the decoder computes.

Every architecture here (TopK, ReLU, JumpReLU) encodes f_i = z_i where feature i is active and 0
elsewhere, with z = (x - b_dec) W_enc + b_enc; TopK's selection and JumpReLU's threshold are piecewise
constant, so df_i/dx = W_enc[:, i] where f_i > 0 and zero elsewhere. A site's output is
x = f W_dec + b_dec + e, linear in its nodes: dx/df_j = W_dec[j] and dx/de = identity. So a downstream
node's cotangent at x is one column of W_enc per position (the error node's: the gradient minus its
path through the dictionary), and an upstream feature's share of a cotangent is one row of W_dec; only
the layers between two sites need autograd.
"""

from __future__ import annotations

import torch

from editing_service.sae.base import SAE


def _index(features: list[int], device: torch.device) -> torch.Tensor:
    return torch.as_tensor(features, dtype=torch.long, device=device)


def feature_scales(
    sae: SAE, f: torch.Tensor, grad: torch.Tensor, features: list[int], mask: torch.Tensor,
) -> torch.Tensor:
    """[B, T, K]: (dm/df_i) where feature i fires (0 elsewhere and at padded positions), for the listed
    features, with dm/df_i = W_dec[i] . grad (grad: dm/d output [B, T, d]; f: the features [B, T, d_sae]).
    The gradient with respect to x of sum over positions of (dm/df_i) * f_i is this times W_enc[:, i]."""
    idx = _index(features, grad.device)
    return (grad @ sae.W_dec[idx].T) * (f[..., idx] > 0) * mask.to(grad.dtype)[..., None]


def error_cotangent(sae: SAE, f: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, T, d]: the gradient with respect to x of sum over positions of (dm/de) . e, where
    e = x - decode(encode(x)) and dm/de = grad: grad minus its path back through the dictionary."""
    g = grad * mask.to(grad.dtype)[..., None]
    return g - ((g @ sae.W_dec.T) * (f > 0)) @ sae.W_enc.T


def node_effects(
    sae: SAE, grads: torch.Tensor, f: torch.Tensor, e: torch.Tensor, features: list[int], mask: torch.Tensor,
) -> torch.Tensor:
    """[K, B, n_features + 1]: per example, the sum over positions of (dO/dnode) * (0 - node) for the
    listed features and the error node (last column), from K gradients with respect to the site's output
    (grads [K, B, T, d])."""
    m = mask.to(f.dtype)
    idx = _index(features, f.device)
    feat = -((grads @ sae.W_dec[idx].T) * (f[..., idx] * m[..., None])).sum(2)
    err = -(grads * (e * m[..., None])).sum((2, 3))
    return torch.cat([feat, err[..., None]], dim=-1)
