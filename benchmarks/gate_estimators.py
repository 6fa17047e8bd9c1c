"""How well estimates of a token's TopK cut serve TopK features: what the served gate would need to reach
precision and recall >= 0.95 of the TopK firings (issue 10).

    .venv/bin/python benchmarks/gate_estimators.py --run runs/mpnet_seed2 [--sites blocks.11.out ...]
        [--fit-tokens 32768] [--heldout-tokens 16384] [--json PATH]

On a discovered run: for each site, the TopK SAE's pre-activations on a seeded sample of the training
cache (fit) and of the validate cache (held out), and the token's TopK cut (midway between its k-th and
(k+1)-th pre-activation). Each estimator of the cut is fitted by ridge least squares on the fit tokens;
every feature's offset is then the served gate's L1 stump (`fit_topk_gate`'s), and the estimator is judged
on the held-out tokens by the R^2 of the cut and the precision and recall of the served firings against
the TopK ones (all live features), and the share of the TopK codes' activation mass the served firings
keep. Estimators:

- linear: x, ||x|| (the served gate, `fit_topk_gate`);
- quadratic: linear plus the products of x's top 32 principal coordinates (528 more terms);
- frequent 512: linear plus the 16 largest pre-activations among the 512 most often firing features (a
  quarter of the encoder at serving time);
- the exact cut plus noise of a given R^2 (what agreement that R^2 buys), and the exact cut (1.0 / 1.0:
  exact TopK, which needs the whole encoder at every edited site).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from editing_service.activations import ActivationCache
from editing_service.artifacts import ArtifactDir
from editing_service.sae import TopKSAE
from editing_service.sae.convert import _stump_thresholds, fit_topk_gate
from editing_service.sae.io import load_sae

PCA_DIMS = 32
FREQUENT = 512
SORTED = 16


def _sample(cache: ActivationCache, site: str, n: int, seed: int) -> torch.Tensor:
    rows = np.random.default_rng(seed).choice(cache.n_tokens, size=min(n, cache.n_tokens), replace=False)
    return torch.from_numpy(cache.read(site, np.sort(rows))).float()


@torch.no_grad()
def _topk(sae: TopKSAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pre-activations, TopK firings, the token's cut)."""
    z = sae.pre_activations(x)
    values, indices = z.topk(sae.k + 1, dim=1)
    fired = torch.zeros_like(z, dtype=torch.bool).scatter_(1, indices[:, : sae.k], values[:, : sae.k] > 0)
    return z, fired, values[:, sae.k - 1 : sae.k + 1].mean(1)


def _ridge(fit: torch.Tensor, held: torch.Tensor, target: torch.Tensor, lam: float = 1e-4):
    """Ridge least squares on standardised terms: the estimate on the fit and on the held-out terms."""
    fit, held = fit.double(), held.double()
    mu, sd = fit.mean(0), fit.std(0) + 1e-9
    a = torch.cat([(fit - mu) / sd, torch.ones(len(fit), 1, dtype=torch.float64)], 1)
    b = torch.cat([(held - mu) / sd, torch.ones(len(held), 1, dtype=torch.float64)], 1)
    gram = a.T @ a + lam * len(a) * torch.eye(a.shape[1], dtype=torch.float64)
    solution = torch.linalg.solve(gram, a.T @ target.double())
    return (a @ solution).float(), (b @ solution).float()


@torch.no_grad()
def _judge(fit, held, tau_fit: torch.Tensor, tau_held: torch.Tensor, live: torch.Tensor) -> dict[str, float]:
    (z_fit, fired_fit, _), (z_held, fired_held, cut_held) = fit, held
    key = torch.where(z_fit > 0, z_fit - tau_fit[:, None], torch.full_like(z_fit, -torch.inf))
    offset = _stump_thresholds(z_fit, fired_fit, key=key)
    served = ((z_held > 0) & (z_held - tau_held[:, None] > offset))[:, live]
    fired = fired_held[:, live]
    both = float((served & fired).sum())
    codes = z_held[:, live]
    return {"r2": 1 - float(((tau_held - cut_held) ** 2).mean() / cut_held.var()),
            "precision": both / max(float(served.sum()), 1.0), "recall": both / max(float(fired.sum()), 1.0),
            "mass_recall": float((codes * (served & fired)).sum() / (codes * fired).sum())}


def site_study(sae: TopKSAE, x_fit: torch.Tensor, x_held: torch.Tensor) -> dict[str, dict[str, float]]:
    fit, held = _topk(sae, x_fit), _topk(sae, x_held)
    live = fit[1].any(0)
    cut_fit = fit[2]
    out: dict[str, dict[str, float]] = {}
    gate = fit_topk_gate(sae, x_fit.numpy(), n_sample=len(x_fit))
    out["linear (served gate)"] = _judge(fit, held, gate.tau(x_fit), gate.tau(x_held), live)
    linear_fit = torch.cat([x_fit, torch.linalg.vector_norm(x_fit, dim=1, keepdim=True)], 1)
    linear_held = torch.cat([x_held, torch.linalg.vector_norm(x_held, dim=1, keepdim=True)], 1)
    mean = x_fit.mean(0)
    axes = torch.linalg.svd(x_fit[:8192] - mean, full_matrices=False).Vh[:PCA_DIMS].T
    upper = torch.triu_indices(PCA_DIMS, PCA_DIMS)

    def quadratic(x: torch.Tensor) -> torch.Tensor:
        p = (x - mean) @ axes
        return (p[:, :, None] * p[:, None, :])[:, upper[0], upper[1]]

    est = _ridge(torch.cat([linear_fit, quadratic(x_fit)], 1), torch.cat([linear_held, quadratic(x_held)], 1), cut_fit)
    out[f"quadratic (top {PCA_DIMS} PCs)"] = _judge(fit, held, *est, live)
    frequent = fit[1].float().mean(0).topk(FREQUENT).indices
    est = _ridge(torch.cat([linear_fit, fit[0][:, frequent].topk(SORTED, dim=1).values], 1),
                 torch.cat([linear_held, held[0][:, frequent].topk(SORTED, dim=1).values], 1), cut_fit)
    out[f"frequent {FREQUENT}"] = _judge(fit, held, *est, live)
    generator = torch.Generator().manual_seed(0)
    for r2 in (0.95, 0.98):
        noise = float(held[2].std()) * (1 - r2) ** 0.5
        out[f"exact cut + noise, R2 {r2}"] = _judge(
            fit, held, cut_fit + noise * torch.randn(cut_fit.shape, generator=generator),
            held[2] + noise * torch.randn(held[2].shape, generator=generator), live)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a discovered run folder with TopK SAEs")
    parser.add_argument("--sites", nargs="*", default=None, help="default: every site with an SAE")
    parser.add_argument("--fit-tokens", type=int, default=32768)
    parser.add_argument("--heldout-tokens", type=int, default=16384)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    art = ArtifactDir(Path(args.run))
    train, validate = ActivationCache.open(art.cache("train")), ActivationCache.open(art.cache("validate"))
    sites = args.sites or train.site_names
    results = {}
    print("| site | estimator | R^2 of the cut (held out) | precision | recall | recall of the activation mass |\n"
          "|---|---|---|---|---|---|")
    for site in sites:
        sae = load_sae(art.sae(site))
        if not isinstance(sae, TopKSAE):
            raise SystemExit(f"{site}: a {type(sae).__name__}, not a TopK SAE: nothing to estimate")
        results[site] = site_study(sae, _sample(train, site, args.fit_tokens, 0),
                                   _sample(validate, site, args.heldout_tokens, 1))
        for name, r in results[site].items():
            print(f"| {site} | {name} | {r['r2']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} "
                  f"| {r['mass_recall']:.3f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
