"""What the served edit costs inside one process, without HTTP: where the serving ratio goes.

    .venv/bin/python benchmarks/served_edit_cost.py [--batch 1 32] [--texts 300] [--threads 2]

The embedded MiniLM with a synthetic edit of the serving benchmark's shape (TopK SAEs 2048 x k=32 with a
gate, 49/50/45/43/55/36 flagged features at blocks 0-5, a rank-1 LEACE eraser after each ablation; random
weights: the cost does not depend on them). `predict_proba` on validate bios, one batch at a time, the
variants in a seeded random order per batch, p50 latency and the median of per-batch ratios to the
original:

- fused: what the service runs for TopK SAEs (each site's ablation, gate and eraser as one `ComputingForm`);
- exact: the same edit of JumpReLU SAEs, no gate: what the service runs for the default BatchTopK SAEs;
- unfused: the TopK ablation and the eraser as two computing forms (what ran before the fusion);
- hooks only: the fused edit's hooks with the computing form replaced by the identity (the cost of calling it).
"""

from __future__ import annotations

import argparse
import random
import time
from contextlib import contextmanager

import numpy as np
import torch

from editing_service.data import load_role, load_spec
from editing_service.edit import FeatureAblation
from editing_service.edit.computing_form import ComputingForm
from editing_service.edit.erasure import ConceptErasure
from editing_service.model import load_classifier
from editing_service.sae import SAEConfig, TopKGate, get_sae_class

FLAGS_PER_SITE = [49, 50, 45, 43, 55, 36]  # the serving benchmark's edit (BENCHMARKS.md, serving)


def synthetic_edit(classifier, *, gated: bool) -> list:
    """TopK SAEs served through the gate (`gated`), or JumpReLU SAEs served as they are."""
    torch.manual_seed(0)
    sites = [s for s in classifier.sites() if s.name.startswith("blocks.")]
    arch, k = ("topk", 32) if gated else ("jumprelu", None)
    edits, erasers = [], []
    for site, n in zip(sites, FLAGS_PER_SITE, strict=True):
        sae = get_sae_class(arch)(SAEConfig(architecture=arch, d_in=384, d_sae=2048, k=k))
        gate = TopKGate(weight=torch.randn(384) * 0.01, norm=0.1, bias=0.0,
                        offset=torch.randn(2048) * 0.1) if gated else None
        features = sorted(random.Random(site.layer).sample(range(2048), n))
        edits.append(FeatureAblation.from_sae(site, sae, features, gate=gate))
        erasers.append(ConceptErasure(site, proj_left=torch.randn(384, 1) * 0.05,
                                      proj_right=torch.randn(1, 384) * 0.05, bias=torch.randn(384)))
    return [*edits, *erasers]


@contextmanager
def variant(classifier, edits: dict[str, list], name: str):
    """The classifier with the edit served as `name` for the duration."""
    fused_with, rewrite = FeatureAblation.fused_with, ComputingForm.rewrite_
    if name == "unfused":
        FeatureAblation.fused_with = lambda self, following: None
    if name == "hooks only":
        ComputingForm.rewrite_ = lambda self, x: x
    try:
        classifier.set_interventions([] if name == "original" else edits.get(name, edits["fused"]))
        yield
    finally:
        FeatureAblation.fused_with, ComputingForm.rewrite_ = fused_with, rewrite
        classifier.set_interventions([])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--texts", type=int, default=300,
                        help="validate bios per batch size (at least 30 batches; cycled when there are fewer)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classifier = load_classifier(None, classes=["nurse", "surgeon"])
    classifier.set_head(torch.nn.Linear(384, 2))
    edits = {"fused": synthetic_edit(classifier, gated=True), "exact": synthetic_edit(classifier, gated=False)}
    texts = load_role(load_spec("biasbios_surgeon_nurse"), "validate").texts
    names = ["original", "fused", "exact", "unfused", "hooks only"]
    print("| batch | variant | p50 ms | median ratio to original |\n|---|---|---|---|")
    for batch in args.batch:
        n_batches = max(30, args.texts // batch)
        batches = [[texts[(b * batch + j) % len(texts)] for j in range(batch)] for b in range(n_batches)]
        times: dict[str, list[float]] = {name: [] for name in names}
        order = random.Random(0)
        for i, texts_of_batch in enumerate(batches):
            for name in order.sample(names, len(names)):
                with variant(classifier, edits, name):
                    start = time.perf_counter()
                    classifier.predict_proba(texts_of_batch)
                    if i >= 2:  # the first batches warm up
                        times[name].append(time.perf_counter() - start)
        base = np.array(times["original"])
        for name in names:
            t = np.array(times[name])
            print(f"| {batch} | {name} | {1000 * np.median(t):.2f} | {np.median(t / base):.3f} |", flush=True)


if __name__ == "__main__":
    main()
