"""Cost of the whole SHIFT run against one forward pass, and of attribution patching per batch.

    .venv/bin/python benchmarks/pipeline.py [--out runs/bench_pipeline] [--write BENCHMARKS.md] [--device cuda]
        [--no-circuit-graph --heading '### ...'] [--model FOLDER --sites ... --rows ...]

In one process and one run: (1) one forward pass of the classifier over the biased training set (the
unit); (2) `run_all` with `--flags auto` (on the embedded default unless `--model` names another
classifier, with the run's `--sites` and optional `--rows`), each step timed; (3) attribution
patching on a few training batches, all sites spliced at once, against a plain forward + backward of the
classifier on the same batches. Targets (DESIGN.md): run <= 10x the forward pass; attribution <= 3
forward+backward passes per batch.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from markdown_sections import write_section  # noqa: E402

from editing_service.circuit import attribution_patching, true_class_metric  # noqa: E402
from editing_service.data import load_role, load_spec  # noqa: E402
from editing_service.edit import head_features, load_model  # noqa: E402
from editing_service.model import capture  # noqa: E402
from editing_service.model.batching import length_sorted_batches  # noqa: E402
from editing_service.model.memory import forward_batch_size  # noqa: E402
from editing_service.pipeline import run_all  # noqa: E402
from editing_service.pipeline.common import load_inputs  # noqa: E402
from editing_service.sae import load_sae  # noqa: E402
from editing_service.settings import RunSettings  # noqa: E402

HEADING = "## Pipeline cost and attribution cost"


class StepClock:
    """A progress callback that records when each step was first and last reported."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.spans: dict[str, list[float]] = {}

    def __call__(self, step: str, _fraction: float) -> None:
        now = time.perf_counter() - self.start
        if step not in self.spans:
            print(f"{now:7.1f} s  {step}", flush=True)
        span = self.spans.setdefault(step, [now, now])
        span[1] = now


def fwd_bwd_seconds(classifier, batches) -> float:
    """A plain forward and backward (metric gradient down to the first block's output) per batch."""
    first = classifier.sites()[0]
    start = time.perf_counter()
    for batch, labels in batches:
        batch, labels = batch.to(classifier.device), labels.to(classifier.device)
        with torch.enable_grad(), capture(classifier.backbone, [first], detach=False) as store:
            metric = true_class_metric(classifier(batch["input_ids"], batch["attention_mask"]), labels)
            torch.autograd.grad(metric.sum(), store[first.name], allow_unused=True)
    synchronize(classifier.device)
    return time.perf_counter() - start


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock span covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def attribution_ratio(
    out: Path, spec_name: str, n_batches: int, batch_size: int, device: torch.device,
) -> dict[str, float]:
    spec = load_spec(spec_name)
    train = load_role(spec, "train")
    classifier = load_model(out / "models" / "original", device=device)
    saes = {site: load_sae(out / "saes" / site.name, device=device) for site in classifier.sites()}
    rows = np.random.default_rng(0).choice(len(train), n_batches * batch_size, replace=False)
    texts, labels = [train.texts[i] for i in rows], train.labels[rows]
    batches = [
        (b, torch.as_tensor(labels[r]))
        for r, b in length_sorted_batches(
            classifier.tokenizer, texts, batch_size=batch_size, max_length=classifier.max_length
        )
    ]
    fwd_bwd_seconds(classifier, batches[:1])  # warm-up
    plain = fwd_bwd_seconds(classifier, batches)
    start = time.perf_counter()
    attribution_patching(classifier, saes, texts, labels, batch_size=batch_size)
    synchronize(classifier.device)
    attrib = time.perf_counter() - start
    return {
        "batches": len(batches),
        "plain_fwd_bwd_s": plain,
        "attrib_s": attrib,
        "ratio": attrib / plain,
        "sites": len(saes),
    }


def machine_line(device: torch.device) -> str:
    line = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch "
            f"threads, torch {torch.__version__}, device {device}")
    if device.type == "cuda":
        line += f" ({torch.cuda.get_device_name(device)})"
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="biasbios_surgeon_nurse")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_pipeline"))
    parser.add_argument("--write", type=Path, default=None, help="BENCHMARKS.md to update")
    parser.add_argument("--attribution-batches", type=int, default=8)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--heading", default=None, help=f"section heading; default {HEADING!r}, with ' (GPU)' on cuda")
    parser.add_argument("--no-circuit-graph", action="store_true", help="the run without its circuit graph")
    parser.add_argument("--model", default=None, help="a model folder (default: the embedded MiniLM)")
    parser.add_argument("--sites", nargs="+", default=None, help="the run's sites (default: every block output)")
    parser.add_argument("--rows", nargs="*", default=None, help="optional report rows (default: the run's)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    settings = RunSettings(spec=args.spec, model={"device": args.device, "path": args.model}, sites=args.sites,
                           graph={"build": not args.no_circuit_graph},
                           edit={} if args.rows is None else {"baselines": args.rows})

    spec, classifier = load_inputs(args.spec, settings.model)
    train = load_role(spec, "train")
    batch = forward_batch_size(settings.model.batch_size, classifier, 0)
    head_features(classifier, train.texts[:64], batch_size=batch)  # warm-up
    start = time.perf_counter()
    head_features(classifier, train.texts, batch_size=batch)
    forward = time.perf_counter() - start
    print(f"one forward pass over {len(train)} training texts: {forward:.1f} s", flush=True)

    clock = StepClock()
    start = time.perf_counter()
    report = run_all(settings, args.out, flags="auto", progress=clock)
    total = time.perf_counter() - start
    print(f"whole run: {total:.1f} s = {total / forward:.2f} x forward", flush=True)
    attrib = attribution_ratio(
        args.out, args.spec, args.attribution_batches, settings.attribution.batch_size, classifier.device
    )
    print(f"attribution: {attrib['ratio']:.2f} forward+backward passes per batch", flush=True)

    steps = "\n".join(f"| {name} | {span[0]:.0f} | {span[1]:.0f} |" for name, span in clock.spans.items())
    rows = "\n".join(
        f"| {r.name} | {r.accuracy:.3f} | {r.group_balanced_accuracy:.3f} | "
        f"{r.worst_group_accuracy:.3f} | {r.protected_attribute_accuracy:.3f} |"
        for r in report.rows
    )
    comparison = report.comparison
    verdict = (f"{comparison.shift_row} beats (group-balanced and worst group): {', '.join(comparison.beats) or 'none'}; "
               f"does not beat: {', '.join(comparison.does_not_beat) or 'none'}.")
    heading = args.heading or (HEADING + (" (GPU)" if classifier.device.type == "cuda" else ""))
    flags = ("" if args.device == "auto" else f" --device {args.device}") + (
        " --no-circuit-graph" if args.no_circuit_graph else "") + (
        f" --model {args.model}" if args.model else "") + (
        f" --sites {' '.join(args.sites)}" if args.sites else "") + (
        "" if args.rows is None else f" --rows {' '.join(args.rows)}")
    graph = "" if settings.graph.build else ", no circuit graph"
    model = f"`{args.model}`" if args.model else "embedded MiniLM"
    sites = ", ".join(args.sites) if args.sites else "every block output"
    rows_run = "" if args.rows is None else f", optional rows {', '.join(args.rows) or 'none'}"
    section = f"""{heading}

Command: `.venv/bin/python benchmarks/pipeline.py --write BENCHMARKS.md{flags}` (one process, one run).
Machine: {machine_line(classifier.device)}.
Settings: the defaults of `editing-service run` ({model}, {sites}{rows_run}, {settings.sae.architecture}
{settings.sae.d_sae} x k={settings.sae.k}, batch {settings.sae.batch_size}, {settings.sae.n_epochs:g} epochs, attribution on
{settings.attribution.n_examples} examples, circuit top {settings.circuit.top_k} per site, `--flags auto`{graph}).

| measure | value | target |
|---|---|---|
| one forward pass over the biased training set ({len(train)} texts) | {forward:.1f} s | the unit |
| whole `run` (discover, flags, edit, retrain, baselines, report) | {total:.1f} s = **{total / forward:.2f}x** | <= 10x |
| attribution patching, {attrib["sites"]} sites at once, {attrib["batches"]} batches | {attrib["attrib_s"]:.1f} s vs {attrib["plain_fwd_bwd_s"]:.1f} s plain fwd+bwd = **{attrib["ratio"]:.2f}** passes per batch | <= 3 |

Steps (seconds from the start of the run, first and last progress report):

| step | from | to |
|---|---|---|
{steps}

The report of that run (evaluation split `{report.dataset.model_dump().get("evaluated_on")}`):

| row | accuracy | group-balanced | worst group | gender accuracy |
|---|---|---|---|---|
{rows}

{verdict}
"""
    print(section)
    if args.write:
        write_section(args.write, heading, section)


if __name__ == "__main__":
    main()
