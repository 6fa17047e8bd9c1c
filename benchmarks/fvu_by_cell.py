"""Where a run's SAEs reconstruct worst: FVU per (class, group) cell of the train and validate tokens.

    .venv/bin/python benchmarks/fvu_by_cell.py --run runs/mpnet_btk12 [--sites blocks.11.out] [--threads 1]

The spec's training split is biased (for the shipped spec: male surgeons and female nurses only), so an SAE
fitted on it never sees a female surgeon's or a male nurse's tokens. This splits each site's squared error by
the cell of the bio a token belongs to, on the run's own caches and SAEs, and divides by one denominator per
site, the validate tokens' variance per token, so that cells compare: a cell's figure is its mean squared
error over that variance, and the validate cells' token-weighted mean is the site's held-out FVU. If the
cells the training split lacks reconstruct much worse than the cells it has, the held-out FVU is raised by
the shift between the splits; if the validate cells the training split has reconstruct as badly, the SAE
generalises poorly from too few tokens.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from editing_service.activations import ActivationCache
from editing_service.artifacts import ArtifactDir
from editing_service.data import load_role, load_spec
from editing_service.sae.io import load_sae
from editing_service.settings import RunSettings

BATCH = 4096


def squared_errors(sae: torch.nn.Module, cache: ActivationCache, site: str) -> tuple[np.ndarray, float]:
    """Per-token ||x - x_hat||^2 and the cache's variance per token (sum over dimensions)."""
    errors = []
    total = np.zeros(cache.meta["sites"][site], dtype=np.float64)
    total_sq = 0.0
    with torch.no_grad():
        for start in range(0, cache.n_tokens, BATCH):
            x = torch.from_numpy(cache.read(site, slice(start, start + BATCH)))
            x_hat = sae.decode(sae.encode(x))
            errors.append((x - x_hat).double().pow(2).sum(-1).numpy())
            total += x.double().sum(0).numpy()
            total_sq += float(x.double().pow(2).sum())
    n = cache.n_tokens
    variance = (total_sq - float((total ** 2).sum()) / n) / n
    return np.concatenate(errors), variance


def cell_of_token(cache: ActivationCache, labels: np.ndarray, groups: np.ndarray, label_names: list[str]) -> np.ndarray:
    cells = np.array([f"{label_names[label]}/{group}" for label, group in zip(labels, groups, strict=True)])
    return cells[cache.example_index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--sites", nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = RunSettings.model_validate_json((args.run / "run.json").read_text())
    spec = load_spec(settings.spec)
    attribute = spec.attribute().name
    artifacts = ArtifactDir(args.run)
    caches = {role: ActivationCache.open(artifacts.cache(role)) for role in ("train", "validate")}
    cells = {}
    for role, cache in caches.items():
        split = load_role(spec, role)
        if len(split) != cache.n_examples:
            raise SystemExit(f"{role}: the cache holds {cache.n_examples} examples, the spec's role {len(split)}")
        cells[role] = cell_of_token(cache, split.labels, split.groups[attribute], list(spec.labels))
    for site in args.sites or caches["validate"].site_names:
        sae = load_sae(artifacts.sae(site), device="cpu", dtype="float32")
        errors_of = {role: squared_errors(sae, cache, site) for role, cache in caches.items()}
        variance = errors_of["validate"][1]
        row: dict[str, object] = {"site": site}
        for role, (errors, _) in errors_of.items():
            row[f"{role} all"] = round(float(errors.mean() / variance), 3)
            for cell in sorted(set(cells[role])):
                mask = cells[role] == cell
                row[f"{role} {cell}"] = f"{errors[mask].mean() / variance:.3f} ({int(mask.sum())} tokens)"
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
