"""Cost of the circuit graph on the embedded default (MiniLM, every block output, TopK 2048 x k=32) per
example, against one forward pass of the classifier per training text, measured on small samples.

Untrained TopK SAEs of the default size and random node scores stand in for a discovered run when no
discovery has finished. The curve's compute does not depend on what the SAEs learned (TopK encodes
densely, then keeps k); the edges' does a little: one VJP row serves one downstream feature per example,
so a batch costs as many rows as the most circuit features firing in one of its examples (printed). Costs are this process's CPU seconds (they stay
meaningful on a shared machine) and wall seconds; the ratio for the issue's setting (all edges among the
top `--nodes` per site on 128 examples, plus the curve, against one forward pass over the whole training
set) is scaled linearly from the per-example costs, and printed as such.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

HEADING = "## Circuit graph: cost per example on the embedded default"


@torch.no_grad()
def firing_fraction(classifier, saes, texts: list[str], circuit: dict[str, list[int]]) -> float:
    """Mean over sites and examples of the fraction of the site's circuit features that fire in the example."""
    from editing_service.model.batching import length_sorted_batches
    from editing_service.model.hooks import capture

    fractions = []
    for _rows, batch in length_sorted_batches(classifier.tokenizer, texts, batch_size=16,
                                              max_length=classifier.max_length):
        mask = batch["attention_mask"].to(classifier.device)
        with capture(classifier.backbone, list(saes)) as seen:
            classifier(batch["input_ids"].to(classifier.device), mask)
        for site, sae in saes.items():
            fired = (sae.encode(seen[site.name])[..., circuit[site.name]] > 0) & mask[..., None].bool()
            fractions.append(fired.any(1).float().mean(1))
    return float(torch.cat(fractions).mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="biasbios_surgeon_nurse")
    parser.add_argument("--forward-texts", type=int, default=128, help="training texts timed for the forward unit")
    parser.add_argument("--examples", type=int, default=16, help="examples timed for edges and the curve")
    parser.add_argument("--nodes", type=int, default=50, help="features per site in the graph")
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args(argv)
    from machine import cpu_name
    from markdown_sections import write_section

    from editing_service.circuit.ablation import ablation_values
    from editing_service.circuit.edges import compute_edges
    from editing_service.circuit.faithfulness import DEFAULT_SIZES, NodeSetEvaluator, faithfulness_curve
    from editing_service.data import load_role, load_spec
    from editing_service.edit import head_features
    from editing_service.model import load_classifier
    from editing_service.sae import SAEConfig, TopKSAE
    from editing_service.settings import RunSettings

    torch.manual_seed(0)
    settings = RunSettings(spec=args.spec)
    spec = load_spec(args.spec)
    train = load_role(spec, "train")
    classifier = load_classifier(None, classes=list(spec.labels))
    sites = classifier.resolve_sites(None)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(train.texts), size=args.forward_texts + args.examples, replace=False)
    forward_texts = [train.texts[i] for i in rows[:args.forward_texts]]
    texts, labels = [train.texts[i] for i in rows[args.forward_texts:]], train.labels[rows[args.forward_texts:]]
    d = classifier.backbone.config.hidden_size
    features = head_features(classifier, forward_texts[:16], batch_size=16)
    classifier.fit_head(head_features(classifier, forward_texts, batch_size=32), train.labels[rows[:args.forward_texts]])
    del features

    clock = (time.perf_counter(), time.process_time())
    head_features(classifier, forward_texts, batch_size=settings.model.batch_size)
    fwd = (time.perf_counter() - clock[0], time.process_time() - clock[1])
    per_text = (fwd[0] / len(forward_texts), fwd[1] / len(forward_texts))

    saes = {s: TopKSAE(SAEConfig(architecture="topk", d_in=d, d_sae=settings.sae.d_sae, k=settings.sae.k)).eval()
            for s in sites}
    circuit = {s.name: sorted(rng.choice(settings.sae.d_sae, size=args.nodes, replace=False).tolist()) for s in sites}
    g = settings.graph
    clock = (time.perf_counter(), time.process_time())
    edges = compute_edges(classifier, saes, texts, labels, circuit, batch_size=g.batch_size, chunk=g.vjp_chunk)
    edge_cost = (time.perf_counter() - clock[0], time.process_time() - clock[1])
    fired = firing_fraction(classifier, saes, texts, circuit)
    ranked = [f"{s.name}/{i}" for s in sites for i in rng.permutation(settings.sae.d_sae)] + \
        [f"{s.name}/error" for s in sites]
    clock = (time.perf_counter(), time.process_time())
    evaluator = NodeSetEvaluator(classifier, saes, texts, labels, ablation_values(saes, "zero"),
                                 batch_size=settings.model.batch_size)
    faithfulness_curve(evaluator, ranked, sizes=DEFAULT_SIZES)
    curve_cost = (time.perf_counter() - clock[0], time.process_time() - clock[1])

    n = len(texts)
    scaled = [(edge_cost[j] + curve_cost[j]) / n * 128 / (per_text[j] * len(train.texts)) for j in (0, 1)]
    lines = [
        f"forward: {per_text[1] * 1000:.1f} ms CPU / {per_text[0] * 1000:.1f} ms wall per training text "
        f"({len(forward_texts)} texts); the training set has {len(train.texts)} texts",
        f"edges ({len(edges)} among {args.nodes} features + the error node per site, {len(sites)} sites, {n} examples): "
        f"{edge_cost[1] / n:.2f} s CPU / {edge_cost[0] / n:.2f} s wall per example; {fired:.0%} of a site's circuit "
        f"features fire in an example, on average",
        f"faithfulness curve ({len(DEFAULT_SIZES) + 1} sizes, circuit and complement, {evaluator.forward_passes} "
        f"forward passes): {curve_cost[1] / n:.3f} s CPU / {curve_cost[0] / n:.3f} s wall per example",
        f"scaled to 128 examples against one forward pass over the training set: {scaled[1]:.2f}x (CPU), "
        f"{scaled[0]:.2f}x (wall)",
    ]
    print("\n".join(lines), flush=True)
    if args.write is not None:
        write_section(args.write, HEADING, f"""{HEADING}

Command: `nice -n 5 .venv/bin/python benchmarks/circuit_cost.py --write BENCHMARKS.md`. Machine: {cpu_name()},
{torch.get_num_threads()} torch threads, torch {torch.__version__}, shared with other jobs (CPU seconds of this
process are the figures to read). Embedded MiniLM, every block output, untrained TopK SAEs of the default
size ({settings.sae.d_sae} x k={settings.sae.k}), random node scores (the edges' cost follows how many circuit
features fire per example: printed below).
Measured on {len(forward_texts)} + {n} training texts and scaled linearly per example:

```
{chr(10).join(lines)}
```
""")


if __name__ == "__main__":
    main()
