"""Is float16 storage of the activation cache exact enough? SAE quality and attribution, float16 vs float32.

    PYTHONPATH=. python benchmarks/cache_dtype.py [--train 600] [--validate 300] [--write BENCHMARKS.md]

On the embedded MiniLM and the shipped Bias in Bios spec: caches the first `--train` texts of the training
role in float32 and in float16 (the bytes on disk of each), trains an SAE per site (blocks 0 and 5, the
default SAE settings, the same seed) on each cache, and compares: FVU on `--validate` validate texts cached
in float32; attribution patching of 64 training texts (stratified) through each SAE set: the correlation of
the feature scores, the overlap of the 20 strongest features, the error node's score. Same seed and
initialisation, so feature i of one SAE is comparable with feature i of the other.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402
from markdown_sections import write_section  # noqa: E402

from editing_service.activations import collect_activations  # noqa: E402
from editing_service.circuit import attribution_patching  # noqa: E402
from editing_service.data import load_role, load_spec  # noqa: E402
from editing_service.model import load_classifier  # noqa: E402
from editing_service.sae import SAETrainer, sae_quality  # noqa: E402
from editing_service.settings import SAESettings  # noqa: E402

HEADING = "## Activation cache: float16 vs float32 storage"
SPEC = "biasbios_surgeon_nurse"
SITES = ["blocks.0.out", "blocks.5.out"]
TOP = 20


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in (path / "sites").rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--validate", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_cache_dtype"))
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    started = time.perf_counter()
    spec = load_spec(SPEC)
    train, validate = load_role(spec, "train"), load_role(spec, "validate")
    rng = np.random.default_rng(0)
    train_rows = np.sort(rng.permutation(len(train.texts))[: args.train])
    texts = [train.texts[i] for i in train_rows]
    clf = load_classifier(None, classes=list(spec.labels))
    sites = clf.resolve_sites(SITES)
    caches = {dtype: collect_activations(clf, texts, sites=sites, out_dir=args.out / dtype, dtype=dtype,
                                         progress=False) for dtype in ("float32", "float16")}
    held_out = collect_activations(clf, validate.texts[: args.validate], sites=sites, out_dir=args.out / "validate",
                                   progress=False)
    # A real head for the metric: fitted on the float32 cache's head features (the same for both caches).
    clf.fit_head(caches["float32"].head_features, train.labels[train_rows])
    saes: dict[str, dict] = {}
    for dtype, cache in caches.items():
        saes[dtype] = {}
        for site in sites:
            trainer = SAETrainer(**SAESettings().trainer_kwargs(), device=clf.device, hook_name=site.name,
                                 model_name="minilm")
            trainer.fit(cache.site(site.name))
            saes[dtype][site] = trainer.sae_
    picked = np.concatenate([np.flatnonzero(train.labels[train_rows] == c)[:32] for c in (0, 1)])
    attribution = {dtype: attribution_patching(clf, saes[dtype], [texts[i] for i in picked],
                                               train.labels[train_rows][picked], batch_size=16)
                   for dtype in caches}
    lines = [HEADING, "", f"Command: `PYTHONPATH=. python benchmarks/cache_dtype.py --write BENCHMARKS.md` "
             f"(CPU: {cpu_name()}, 2 torch threads, {time.perf_counter() - started:.0f} s on a shared, busy machine). "
             f"Embedded MiniLM, {args.train} training texts of {SPEC} ({caches['float32'].n_tokens:,} tokens), "
             f"TopK SAEs with the default settings (2048 x k=32, 1 epoch, seed 0) trained on each cache, FVU on "
             f"{args.validate} validate texts ({held_out.n_tokens:,} tokens, float32), attribution patching on 64 "
             "training texts.", "",
             "| measure | float32 cache | float16 cache | difference |", "|---|---|---|---|"]
    b32, b16 = folder_bytes(args.out / "float32"), folder_bytes(args.out / "float16")
    lines.append(f"| cache on disk, {len(sites)} sites | {b32 / 2**20:.1f} MiB | {b16 / 2**20:.1f} MiB | "
                 f"x{b16 / b32:.2f} |")
    worst_fvu = worst_corr = 0.0
    for site in sites:
        x = held_out.read(site.name)
        fvu = {d: sae_quality(saes[d][site], x).fvu for d in caches}
        worst_fvu = max(worst_fvu, abs(fvu["float16"] - fvu["float32"]))
        lines.append(f"| FVU {site.name} | {fvu['float32']:.4f} | {fvu['float16']:.4f} | "
                     f"{fvu['float16'] - fvu['float32']:+.4f} |")
        scores = {d: attribution[d][site.name] for d in caches}
        a, b = scores["float32"].features, scores["float16"].features
        corr = float(np.corrcoef(a, b)[0, 1])
        worst_corr = max(worst_corr, 1 - corr)
        top = len(set(np.argsort(-np.abs(a))[:TOP]) & set(np.argsort(-np.abs(b))[:TOP])) / TOP
        lines.append(f"| attribution {site.name}: correlation of feature scores | | | {corr:.4f} |")
        lines.append(f"| attribution {site.name}: overlap of the top {TOP} features | | | {top:.2f} |")
        lines.append(f"| attribution {site.name}: error node | {scores['float32'].error:.4f} | "
                     f"{scores['float16'].error:.4f} | {scores['float16'].error - scores['float32'].error:+.4f} |")
    verdict = "within" if worst_fvu <= 0.01 and worst_corr <= 0.01 else "NOT within"
    lines += ["", f"Largest FVU change {worst_fvu:.4f}; lowest score correlation {1 - worst_corr:.4f}: {verdict} the "
              "0.01 target.", ""]
    section = "\n".join(lines)
    print(section)
    if args.write is not None:
        write_section(args.write, HEADING, section)


if __name__ == "__main__":
    main()
