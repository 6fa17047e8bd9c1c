"""Cost of the circuit graph on the embedded default (MiniLM, every block output, SAEs of the default
architecture and size): all edges among the top `--nodes` features per site plus the faithfulness curve on 128
training examples (issue 13's setting), against one forward pass of the classifier over the whole training set.

Untrained SAEs (calibrated to fire about k features per token) and random node scores stand in for a discovered
run. The curve's compute does not depend on what the SAEs learned (every architecture encodes densely); the
edges' does a little: one VJP row serves one downstream feature per example, so a batch costs as many rows as
the most circuit features firing in one of its examples (printed). Costs are this process's CPU seconds and
wall seconds; with fewer `--examples` the ratio is scaled linearly to 128 and printed as such.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

HEAD_TEXTS = 128  # training texts the probe's head is fitted on (its weights do not change the cost)
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


@torch.no_grad()
def untrained_saes(classifier, sites, sae_settings, texts: list[str]) -> dict:
    """Untrained SAEs of the default architecture and size per site, in their inference form; an architecture
    that calibrates after training (BatchTopK's threshold) calibrates on these texts' activations, so that
    about k features fire per token as in a trained one."""
    from editing_service.model.batching import length_sorted_batches
    from editing_service.model.hooks import capture
    from editing_service.sae import SAEConfig
    from editing_service.sae.registry import get_sae_class

    sae_class = get_sae_class(sae_settings.architecture)
    d = classifier.backbone.config.hidden_size
    k = sae_settings.k if sae_class.uses_k else None
    samples: dict[str, list[torch.Tensor]] = {site.name: [] for site in sites}
    for _rows, batch in length_sorted_batches(classifier.tokenizer, texts, batch_size=16,
                                              max_length=classifier.max_length):
        mask = batch["attention_mask"].to(classifier.device).bool()
        with capture(classifier.backbone, list(sites)) as seen:
            classifier(batch["input_ids"].to(classifier.device), mask.long())
        for site in sites:
            samples[site.name].append(seen[site.name][mask])
    saes = {}
    for site in sites:
        sae = sae_class(SAEConfig(architecture=sae_settings.architecture, d_in=d, d_sae=sae_settings.d_sae, k=k))
        sae.finish_training_(torch.cat(samples[site.name]))
        saes[site] = sae.inference_form().eval()
    return saes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="biasbios_surgeon_nurse")
    parser.add_argument("--forward-texts", type=int, default=0,
                        help="training texts timed for the forward unit; 0 (default): the whole training set, as the "
                        "unit is defined (a sample is padded differently from the length-sorted whole set)")
    parser.add_argument("--examples", type=int, default=128,
                        help="training examples of the edges and the curve (the issue's setting: 128)")
    parser.add_argument("--nodes", type=int, default=50, help="features per site in the graph")
    parser.add_argument("--architecture", default=None, help="SAE architecture (default: the settings' default)")
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args(argv)
    from machine import cpu_name
    from markdown_sections import write_section

    from editing_service.circuit.ablation import ablation_values
    from editing_service.circuit.edges import compute_edges
    from editing_service.circuit.faithfulness import NodeSetEvaluator, faithfulness_curve
    from editing_service.data import load_role, load_spec
    from editing_service.edit import head_features
    from editing_service.model import load_classifier
    from editing_service.model.memory import forward_batch_size
    from editing_service.settings import RunSettings

    torch.manual_seed(0)
    settings = RunSettings(spec=args.spec)
    if args.architecture is not None:
        settings = settings.model_copy(update={"sae": settings.sae.model_copy(update={"architecture": args.architecture})})
    spec = load_spec(args.spec)
    train = load_role(spec, "train")
    classifier = load_classifier(None, classes=list(spec.labels))
    sites = classifier.resolve_sites(None)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(train.texts), size=HEAD_TEXTS + args.examples, replace=False)
    head_texts = [train.texts[i] for i in rows[:HEAD_TEXTS]]
    texts, labels = [train.texts[i] for i in rows[HEAD_TEXTS:]], train.labels[rows[HEAD_TEXTS:]]
    classifier.fit_head(head_features(classifier, head_texts, batch_size=32), train.labels[rows[:HEAD_TEXTS]])
    forward_texts = train.texts if args.forward_texts == 0 else \
        [train.texts[i] for i in rng.choice(len(train.texts), size=args.forward_texts, replace=False)]

    batch_size = forward_batch_size(settings.model.batch_size, classifier, 0)  # "auto" resolved as the pipeline does
    clock = (time.perf_counter(), time.process_time())
    head_features(classifier, forward_texts, batch_size=batch_size)
    fwd = (time.perf_counter() - clock[0], time.process_time() - clock[1])
    per_text = (fwd[0] / len(forward_texts), fwd[1] / len(forward_texts))

    saes = untrained_saes(classifier, sites, settings.sae, head_texts[:32])
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
                                 batch_size=g.batch_size)
    faithfulness_curve(evaluator, ranked, sizes=g.curve_sizes)
    curve_cost = (time.perf_counter() - clock[0], time.process_time() - clock[1])

    n = len(texts)
    scaled = [(edge_cost[j] + curve_cost[j]) / n * 128 / (per_text[j] * len(train.texts)) for j in (0, 1)]
    lines = [
        f"forward: {per_text[1] * 1000:.1f} ms CPU / {per_text[0] * 1000:.1f} ms wall per training text "
        f"({len(forward_texts)} texts); the training set has {len(train.texts)} texts",
        f"edges ({len(edges)} among {args.nodes} features + the error node per site, {len(sites)} sites, {n} examples): "
        f"{edge_cost[1] / n:.2f} s CPU / {edge_cost[0] / n:.2f} s wall per example; {fired:.0%} of a site's circuit "
        f"features fire in an example, on average",
        f"faithfulness curve ({len(g.curve_sizes) + 1} sizes, circuit and complement, {evaluator.forward_passes} "
        f"forward passes): {curve_cost[1] / n:.3f} s CPU / {curve_cost[0] / n:.3f} s wall per example",
        f"{'' if n == 128 else 'scaled to 128 examples, '}edges and curve against one forward pass over the "
        f"training set: {scaled[1]:.2f}x (CPU), {scaled[0]:.2f}x (wall)",
    ]
    print("\n".join(lines), flush=True)
    if args.write is not None:
        write_section(args.write, HEADING, f"""{HEADING}

Command: `.venv/bin/python benchmarks/circuit_cost.py --write BENCHMARKS.md`. Machine: {cpu_name()},
{torch.get_num_threads()} torch threads, torch {torch.__version__}. Embedded MiniLM, every block output, untrained SAEs of the default
architecture and size ({settings.sae.architecture}, {settings.sae.d_sae} x k={settings.sae.k}, calibrated to fire
about k per token), random node scores (the edges' cost follows how many circuit
features fire per example: printed below).
The graph settings' defaults (batches of {g.batch_size} examples, {g.vjp_chunk} VJP rows per call); the unit is
one forward pass of the classifier over {len(forward_texts)} training texts at the pipeline's batch size; edges and
the curve on {n} training examples:

```
{chr(10).join(lines)}
```
""")


if __name__ == "__main__":
    main()
