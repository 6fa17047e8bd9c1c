"""Ablating nodes outside a node set, at every site at once (faithfulness, completeness, exact pruning).

At each site the output x becomes x + (f' - f) W_dec + (e' - e), where f' keeps the set's features and
replaces the others by their ablation value (the mean over the training split's tokens, or zero), and
e' is e when the site's error node is in the set, else its ablation value. Keeping every node gives x
itself, bit for bit (the site is left alone). Sites are ablated in order, so a site sees the ablated
upstream.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from editing_service.activations import ActivationCache
from editing_service.circuit.graph import Ablation
from editing_service.model.hooks import intervene, past_leading
from editing_service.model.sites import Site
from editing_service.sae.splice import Dictionary, encode_columns

MEAN_ROWS_PER_READ = 8192
NEEDS_CACHE = "Mean ablation needs the training split's activation cache."


@dataclass
class SiteKeep:
    """Which nodes of one site survive: a [d_sae] boolean mask of features and the error node."""

    features: torch.Tensor
    error: bool

    @classmethod
    def everything(cls, d_sae: int, device: torch.device | str = "cpu") -> SiteKeep:
        return cls(torch.ones(d_sae, dtype=torch.bool, device=device), True)

    @classmethod
    def nothing(cls, d_sae: int, device: torch.device | str = "cpu") -> SiteKeep:
        return cls(torch.zeros(d_sae, dtype=torch.bool, device=device), False)


@dataclass
class AblationValues:
    """What an ablated node is set to, per site: features [d_sae] and error [d]."""

    features: dict[str, torch.Tensor]
    error: dict[str, torch.Tensor]
    kind: Ablation


@torch.no_grad()
def ablation_values(
    saes: Mapping[Site, Dictionary], kind: Ablation, cache: ActivationCache | None = None,
) -> AblationValues:
    """Zeros, or the means of every feature and error term over the tokens of `cache` (the training split).

    The error term e = x - (f W_dec + b_dec) is affine in (x, f), so its mean is x's mean less the decoded
    mean of f: one encoder pass over the cache, no decoder pass."""
    if kind == "mean" and cache is None:
        raise ValueError(NEEDS_CACHE)
    features, error = {}, {}
    for site, sae in saes.items():
        d_sae, d = int(sae.W_dec.shape[0]), int(sae.W_dec.shape[1])
        device, dtype = sae.W_dec.device, sae.W_dec.dtype
        f_mean = torch.zeros(d_sae, dtype=torch.float64, device=device)
        e_mean = torch.zeros(d, dtype=torch.float64, device=device)
        if cache is not None and kind == "mean" and cache.n_tokens > 0:
            x_sum = torch.zeros(d, dtype=torch.float64, device=device)
            for start in range(0, cache.n_tokens, MEAN_ROWS_PER_READ):
                x = torch.tensor(cache.read(site.name, slice(start, start + MEAN_ROWS_PER_READ)),
                                 device=device, dtype=dtype)
                f_mean += sae.encode(x).double().sum(0)
                x_sum += x.double().sum(0)
            f_mean /= cache.n_tokens
            e_mean = x_sum / cache.n_tokens - (f_mean @ sae.W_dec.double() + sae.b_dec.double())
        features[site.name] = f_mean.to(dtype)
        error[site.name] = e_mean.to(dtype)
    return AblationValues(features=features, error=error, kind=kind)


def _sparse_decode(f: torch.Tensor, w_dec: torch.Tensor) -> torch.Tensor:
    """f @ W_dec for a mostly-zero f [..., d_sae] (TopK: k of d_sae per token), through a CSR product."""
    flat = f.reshape(-1, f.shape[-1]).to(w_dec.dtype)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we use only its matmul
        warnings.simplefilter("ignore", UserWarning)
        return (flat.to_sparse_csr() @ w_dec).reshape(*f.shape[:-1], w_dec.shape[-1])


@contextmanager
def ablate_outside(
    model: nn.Module, saes: Mapping[Site, Dictionary], keep: Mapping[str, SiteKeep], values: AblationValues,
    *, leading: int = 0,
) -> Iterator[None]:
    """Run `model` with every node not in `keep` ablated (sites missing from `keep` are left alone) at
    every position but the first `leading` (the family's sink positions, which have no nodes).

    The ablated features' share of the output, sum over dropped i of value_i W_dec[i], is one vector per
    site; a site that keeps no node is that constant and skips its encoder. Otherwise the output needs the
    codes of one side only: the dropped features' when the error node is kept (x less their share), the
    kept features' when it is not. When that side is the smaller part of the dictionary, only its columns
    are encoded (`encode_columns`), and their share is a sparse product.
    """

    def make_fn(site: Site, sae: Dictionary, kept: SiteKeep):
        drop = ~kept.features
        w_dec = sae.W_dec
        const = (values.features[site.name] * drop) @ w_dec  # [d]: the dropped features at their values
        if not kept.error:
            const = const + values.error[site.name] + sae.b_dec  # with x - e = f W_dec + b_dec
        constant = not kept.error and not bool(kept.features.any())
        needed = drop if kept.error else kept.features  # the features whose codes the output reads
        columns = needed.nonzero().squeeze(1) if 2 * int(needed.sum()) <= needed.numel() else None
        w_needed = w_dec if columns is None else w_dec[columns]

        def fn(x: torch.Tensor) -> torch.Tensor:
            if constant:
                return const.to(x.dtype).expand_as(x).contiguous()
            f = sae.encode(x) * needed if columns is None else encode_columns(sae, x, columns)
            share = _sparse_decode(f, w_needed)
            return ((x - share) if kept.error else share).add(const).to(x.dtype)

        return fn

    fns = {site: past_leading(leading, make_fn(site, sae, keep[site.name])) for site, sae in saes.items()
           if site.name in keep and not (keep[site.name].error and bool(keep[site.name].features.all()))}
    with intervene(model, fns):
        yield
