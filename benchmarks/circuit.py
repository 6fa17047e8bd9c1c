"""The circuit graph: edge check against exact patching, cost against one forward pass, faithfulness,
the flagged (suggested) set, exact pruning and the head lens.

(1) On a tiny random BERT (tests/factories.py) with TopK SAEs at block and MLP outputs: the correlation
between edges by batched VJPs and exact two-step patching, per site pair. (2) On a discovered run
(`editing-service discover --out RUN`): one forward pass of the classifier over the training set (the
unit), then circuit.json rebuilt with the given graph settings, each part timed (wall and this process's
CPU seconds, which stay meaningful on a shared machine), and the figures printed and written.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

HEADING = "## Circuit graph: cost, faithfulness, exact pruning"
CHECK_HEADING = "## Circuit graph: edges against exact patching"


class Clock:
    """Wall and process-CPU seconds per progress step."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[float, float]] = {}
        self.last: dict[str, tuple[float, float]] = {}

    def __call__(self, step: str, _fraction: float) -> None:
        now = (time.perf_counter(), time.process_time())
        self.first.setdefault(step.split(":")[0] + ":" + step.split(":")[-1], now)
        self.last[step.split(":")[0] + ":" + step.split(":")[-1]] = now


def edge_check(arch: str = "topk", n_texts: int = 16) -> dict[str, float]:
    import tempfile

    from factories import make_bios_frame, make_model_folder

    from editing_service.activations import collect_activations
    from editing_service.circuit.edges import compute_edges
    from editing_service.circuit.exact_edges import exact_edges
    from editing_service.model import load_classifier
    from editing_service.sae import SAETrainer

    root = Path(tempfile.mkdtemp())
    frame = make_bios_frame(8)
    texts = frame.text.tolist()
    labels = (frame.occupation == "surgeon").to_numpy().astype(np.int64)
    clf = load_classifier(make_model_folder(root, "bert"), classes=["nurse", "surgeon"])
    sites = clf.sites(("block", "mlp"))
    cache = collect_activations(clf, texts, sites=sites, out_dir=root / "cache", labels=labels, progress=False)
    clf.fit_head(cache.head_features, labels)
    saes = {s: SAETrainer(architecture=arch, d_sae=48, k=6, n_epochs=30, batch_size=256, seed=0)
            .fit(cache.site(s.name)).sae_ for s in sites}
    step = max(1, len(texts) // n_texts)
    texts, labels = texts[::step][:n_texts], labels[::step][:n_texts]
    circuit = {s.name: list(range(0, 48, 6)) for s in sites}
    approx = compute_edges(clf, saes, texts, labels, circuit, batch_size=8, chunk=8)
    exact = exact_edges(clf, saes, texts, labels, circuit)
    pairs = defaultdict(list)
    for (u, d), value in exact.items():
        pairs[(u.rsplit("/", 1)[0], d if d == "metric" else d.rsplit("/", 1)[0])].append((approx.get((u, d), 0.0), value))
    out = {}
    for pair, values in pairs.items():
        a, e = np.array(values).T
        live = np.abs(e) > 1e-9
        if live.sum() >= 3:
            out[f"{pair[0]} -> {pair[1]}"] = float(np.corrcoef(a[live], e[live])[0, 1])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="a discovered run folder (none: edge check only)")
    parser.add_argument("--write", type=Path, default=None, help="BENCHMARKS.md to update")
    parser.add_argument("--prune", action="store_true")
    parser.add_argument("--skip-edge-check", action="store_true")
    parser.add_argument("--examples", type=int, default=None, help="graph n_examples (default: the run's)")
    args = parser.parse_args(argv)
    from machine import cpu_name
    from markdown_sections import write_section

    from editing_service.data import load_role, load_spec
    from editing_service.edit import head_features, load_model
    from editing_service.model.memory import forward_batch_size
    from editing_service.pipeline.circuit import run_circuit, run_graph_settings
    from editing_service.settings import RunSettings

    checks = {} if args.skip_edge_check else {arch: edge_check(arch) for arch in ("topk", "relu")}
    for arch, by_pair in checks.items():
        print(arch, {k: round(v, 3) for k, v in by_pair.items()}, flush=True)
    if checks and args.write is not None:
        check_rows = "\n".join(f"| {arch} | {pair} | {v:.3f} |" for arch, by_pair in checks.items()
                               for pair, v in by_pair.items())
        write_section(args.write, CHECK_HEADING, f"""{CHECK_HEADING}

Command: `nice -n 5 .venv/bin/python benchmarks/circuit.py --write BENCHMARKS.md`. Tiny random BERT (2 layers,
d 32), SAEs of 48 features (TopK k=6, or ReLU) at every block and MLP output, 8 features + the error node per
site, 16 training examples: correlation of edges by batched VJPs with exact two-step patching (zero u; read d'
at the downstream site with every site in between held at its clean output; patch d := d'), over the live
pairs of each site pair. Pairs with no path that crosses no other site are zero in both and left out.

| SAE | site pair | correlation |
|---|---|---|
{check_rows}
""")
    if args.run is None:
        return

    settings = RunSettings.model_validate_json((args.run / "run.json").read_text())
    train = load_role(load_spec(settings.spec), "train")
    classifier = load_model(args.run / "models" / "original")
    batch_size = forward_batch_size(settings.model.batch_size, classifier, 0)  # "auto" resolved as the pipeline does
    head_features(classifier, train.texts[:32], batch_size=batch_size)  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    head_features(classifier, train.texts, batch_size=batch_size)
    forward = (time.perf_counter() - wall, time.process_time() - cpu)
    print(f"forward pass over {len(train)} training texts: {forward[0]:.1f} s wall, {forward[1]:.1f} s CPU", flush=True)

    clock = Clock()
    changes: dict[str, object] = {"prune": args.prune}
    if args.examples is not None:
        changes["n_examples"] = args.examples
    graph_settings = run_graph_settings(args.run, changes)
    wall, cpu = time.perf_counter(), time.process_time()
    graph = run_circuit(args.run, graph=graph_settings, progress=clock)
    total = (time.perf_counter() - wall, time.process_time() - cpu)

    def span(step: str) -> tuple[float, float]:
        if step not in clock.first:
            return (float("nan"), float("nan"))
        return tuple(b - a for a, b in zip(clock.first[step], clock.last[step], strict=True))  # type: ignore[return-value]

    edges, faith = span("circuit:edges"), span("circuit:faithfulness")
    n_nodes = sum(n.kind != "metric" for n in graph.nodes)
    lines = [f"edges ({len(graph.edges)} among {n_nodes} nodes, {graph.n_examples} examples): "
             f"{edges[0]:.0f} s wall / {edges[1]:.0f} s CPU",
             f"faithfulness curve + node sets: {faith[0]:.0f} s wall / {faith[1]:.0f} s CPU",
             f"edges + curve = {(edges[0] + faith[0]) / forward[0]:.2f}x forward (wall), "
             f"{(edges[1] + faith[1]) / forward[1]:.2f}x forward (CPU)",
             f"whole circuit step: {total[0]:.0f} s wall / {total[1]:.0f} s CPU"]
    print("\n".join(lines), flush=True)
    from editing_service.circuit_text import summary

    text = summary(graph)
    print(text, flush=True)
    if args.write is None:
        return
    section = f"""{HEADING}

Command: `nice -n 5 .venv/bin/python benchmarks/circuit.py --run RUN [--prune] --write BENCHMARKS.md`, RUN a
folder written by `editing-service discover --spec {settings.spec}` (defaults). Machine: {cpu_name()},
{torch.get_num_threads()} torch threads, torch {torch.__version__}; the machine was shared with other jobs,
so the CPU-second ratios are the ones to read (wall-clock ratios are inflated by the other load).

Graph settings: {graph_settings.model_dump()}.

Cost on the run: one forward pass over the training set ({len(train)} texts) {forward[0]:.1f} s wall /
{forward[1]:.1f} s CPU.

```
{chr(10).join(lines)}
```

```
{text}
```
"""
    write_section(args.write, HEADING, section)


if __name__ == "__main__":
    main()
