"""Tiny factories shared by the SAE tests."""

from __future__ import annotations

import numpy as np
import torch

from editing_service.sae import SAE, SAEConfig, get_sae_class

ARCHITECTURES = ("topk", "batchtopk", "relu", "jumprelu")


def make_cfg(architecture: str, d_in: int = 8, d_sae: int = 16, **kwargs: object) -> SAEConfig:
    if get_sae_class(architecture).uses_k:
        kwargs.setdefault("k", 3)
    return SAEConfig(architecture=architecture, d_in=d_in, d_sae=d_sae, **kwargs)  # type: ignore[arg-type]


def make_sae(architecture: str, d_in: int = 8, d_sae: int = 16, seed: int = 0, **kwargs: object) -> SAE:
    """A random SAE with non-trivial biases, decoder norms and thresholds."""
    gen = torch.Generator().manual_seed(seed)
    sae = get_sae_class(architecture)(make_cfg(architecture, d_in, d_sae, **kwargs), generator=gen)
    with torch.no_grad():
        sae.b_enc.copy_(0.1 * torch.randn(d_sae, generator=gen))
        sae.b_dec.copy_(0.5 * torch.randn(d_in, generator=gen))
        sae.W_dec.mul_(0.5 + torch.rand(d_sae, 1, generator=gen))
        if architecture == "jumprelu":
            sae.threshold.copy_(0.3 * torch.rand(d_sae, generator=gen))
        if architecture == "batchtopk":
            sae.threshold.fill_(0.2)
    return sae


def planted_data(
    n: int = 20000, d: int = 32, m: int = 48, active: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """x = offset + sum of `active` of m random unit directions with coefficients in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((m, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    chosen = np.argsort(rng.random((n, m)), axis=1)[:, :active]  # [n, active] distinct directions
    coef = rng.uniform(0.5, 1.5, (n, active))
    x = np.einsum("na,nad->nd", coef, dirs[chosen]) + 0.3
    return x.astype(np.float32), dirs


def recovered_fraction(sae: SAE, dirs: np.ndarray, threshold: float = 0.9) -> float:
    """Share of planted directions with a decoder row at cosine > threshold."""
    w = sae.W_dec.detach().cpu().double().numpy()
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    return float(((dirs @ w.T).max(axis=1) > threshold).mean())


def batch_top_k(sae: SAE, x: torch.Tensor) -> torch.Tensor:
    """The dense BatchTopK code of a batch x [n, d_in]: its k * n largest pre-activations, ReLU'd."""
    z = sae.pre_activations(x)
    top = z.reshape(-1).topk(sae.cfg.k * x.shape[0])
    return torch.zeros_like(z).reshape(-1).scatter(0, top.indices, top.values.relu()).reshape(z.shape)
