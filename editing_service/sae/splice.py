"""Splicing SAEs into a classifier: the site's output x becomes D(f) + e, exposing f and e as nodes.

With the error term kept, the spliced model computes exactly the original function; dropping it (`keep_error=False`) replaces x by the reconstruction alone. For gradient
attribution (`track_grad=True`), f and e are made leaves of the graph so that `f.grad` and `e.grad`
are exactly dm/df and dm/de, and `x - x.detach()` (zero in value) lets earlier layers still receive
the true gradient. Getting this plumbing wrong silently gives garbage attributions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from editing_service.model.hooks import intervene
from editing_service.model.sites import Site


class Dictionary(nn.Module):
    """What a splice needs of an SAE: encode x -> f and decode f -> x_hat."""

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...  # pragma: no cover
    def decode(self, f: torch.Tensor) -> torch.Tensor: ...  # pragma: no cover


def encode_columns(sae: Dictionary, x: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """The activations of the features `columns` [c] of `sae`, [..., c]: `SAE.encode_columns`, which computes
    only those columns where the architecture allows, or the whole code gathered for any other dictionary."""
    if hasattr(sae, "encode_columns"):
        return sae.encode_columns(x, columns)
    return sae.encode(x)[..., columns]


@dataclass
class SpliceNodes:
    """The nodes of one site from the last forward pass: features f [B, T, d_sae] and error e [B, T, d]."""

    features: torch.Tensor | None = None
    error: torch.Tensor | None = None


@contextmanager
def splice(
    model: nn.Module,
    saes: Mapping[Site, Dictionary],
    *,
    keep_error: bool = True,
    track_grad: bool = False,
) -> Iterator[dict[str, SpliceNodes]]:
    """Run `model` with every site's output replaced by its SAE decomposition while open.

    Yields {site name: SpliceNodes} filled on each forward pass.
    """
    if track_grad and not keep_error:
        raise ValueError("track_grad needs keep_error=True: attribution treats the error term as a node.")
    nodes = {site.name: SpliceNodes() for site in saes}

    def make_fn(site: Site, sae: Dictionary):
        def fn(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                f = sae.encode(x)
                x_hat = sae.decode(f)
                e = x - x_hat
            if track_grad:
                f = f.detach().clone().requires_grad_(True)
                e = e.detach().clone().requires_grad_(True)
                out = sae.decode(f) + e + (x - x.detach())
            elif keep_error:
                # x_hat + (x - x_hat) in float64 rounds back to x exactly; in float32 it can miss by an
                # ulp of |x_hat|, which a sharp head turns into flipped predictions.
                out = x_hat.double() + (x.double() - x_hat.double())
            else:
                out = x_hat
            nodes[site.name].features, nodes[site.name].error = f, e
            return out.to(x.dtype)

        return fn

    with intervene(model, {site: make_fn(site, sae) for site, sae in saes.items()}):
        yield nodes
