"""SAE-training speed: our `editing_service.sae.SAETrainer` against SAELens's `SAETrainer`, same data.

Both sides train a TopK SAE (d_in 384 -> d_sae 2048, k 32, batch 4096, same lr schedule, same dead-feature
window, same torch thread count) on the same cached activations: the output of MiniLM's first block
(`blocks.0.out`) on the shipped Bias in Bios training subset (266k tokens), written once to a .npy file that
both read into memory. Each run is a fresh process (ours with .venv, SAELens with .venv-saelens, made by
`make bench-env`); the sides alternate, never overlap, and each run does an untimed 3-step warm-up fit first,
then times one whole `fit()` call (statistics, training loop, weight folding; not reading the .npy). The
trained SAEs are scored by the same function (`editing_service.sae.sae_quality`, after `load_sae`) on the
same held-out tokens (validation-split texts), so a side cannot win by doing less work.

Usage:
    .venv/bin/python benchmarks/sae_training.py [--tokens N] [--repeats 3] [--out BENCHMARKS.md]

Writes the "## SAE training" section of --out (other sections are kept) and prints the same table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from machine import cpu_name, machine_busy_seconds  # noqa: E402
from markdown_sections import write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks"
DEFAULT_CACHE = BENCH_DIR / "results" / "sae_training"  # git-ignored
SAELENS_PYTHON = ROOT / ".venv-saelens" / "bin" / "python"
SPEC = "biasbios_surgeon_nurse"
SITE = "blocks.0.out"
SECTION = "## SAE training"
TARGET_RATIO = 1.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=None, help="training tokens per run (default: 2 epochs)")
    p.add_argument("--repeats", type=int, default=3, help="runs per side; the median is reported")
    p.add_argument(
        "--out", default="BENCHMARKS.md", help="markdown file whose SAE-training section is written"
    )
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--d-sae", type=int, default=2048)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heldout-texts", type=int, default=400, help="validation texts whose tokens score FVU")
    p.add_argument(
        "--quiet-cores", type=float, default=0.25, help="other processes' CPU use counted as quiet"
    )
    p.add_argument("--max-wait", type=float, default=600, help="seconds to wait for quiet before each run")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--saelens-python", type=Path, default=SAELENS_PYTHON)
    p.add_argument(
        "--saelens-sparse",
        action="store_true",
        help="SAELens use_sparse_activations=True (fails in backward on CPU with its default rescale_acts_by_decoder_norm)",
    )
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------- data
def cache_activations(cache_dir: Path, n_heldout_texts: int, seed: int) -> tuple[Path, Path]:
    """Write train.npy / heldout.npy (float32 [n, 384]) once; reuse them while the inputs are unchanged."""
    from editing_service.activations import collect_activations
    from editing_service.data import load_role, load_spec
    from editing_service.model import load_classifier

    spec = load_spec(SPEC)
    train = load_role(spec, "train")
    heldout = load_role(spec, "validate")
    clf = load_classifier(None, classes=list(spec.labels))
    rng = np.random.default_rng(seed)
    picked = sorted(
        rng.choice(len(heldout.texts), size=min(n_heldout_texts, len(heldout.texts)), replace=False)
    )
    heldout_texts = [heldout.texts[i] for i in picked]
    key = {
        "spec": SPEC,
        "site": SITE,
        "weights_sha256": clf.source.weights_sha256,
        "n_train_texts": len(train.texts),
        "heldout_texts": [int(i) for i in picked],
    }
    train_path, heldout_path, key_path = (
        cache_dir / "train.npy",
        cache_dir / "heldout.npy",
        cache_dir / "key.json",
    )
    if key_path.exists() and train_path.exists() and heldout_path.exists():
        if json.loads(key_path.read_text()) == key:
            print(f"reusing cached activations in {cache_dir}")
            return train_path, heldout_path
    cache_dir.mkdir(parents=True, exist_ok=True)
    site = [s for s in clf.sites() if s.name == SITE]
    for texts, path in ((train.texts, train_path), (heldout_texts, heldout_path)):
        t0 = time.perf_counter()
        cache = collect_activations(
            clf, texts, sites=site, out_dir=cache_dir / f"cache_{path.stem}", dtype="float32", progress=False
        )
        np.save(path, np.ascontiguousarray(cache.site(SITE)[:], dtype=np.float32))
        print(
            f"cached {cache.n_tokens} tokens of {len(texts)} texts -> {path.name} ({time.perf_counter() - t0:.0f} s)"
        )
    key_path.write_text(json.dumps(key))
    return train_path, heldout_path


# ---------------------------------------------------------------------------------------------- runs
def schedule(n_steps: int) -> dict[str, int]:
    """The lr schedule and dead window both sides get: our trainer's defaults, made explicit."""
    return {
        "warmup_steps": min(1000, n_steps // 20),
        "decay_steps": int(0.2 * n_steps),
        "dead_window_steps": max(4, n_steps // 10),
    }


def worker_command(
    side: str, args: argparse.Namespace, train: Path, heldout: Path, n_steps: int, save_dir: Path
) -> list[str]:
    python = str(args.saelens_python) if side == "saelens" else sys.executable
    script = BENCH_DIR / ("_saelens_worker.py" if side == "saelens" else "_ours_worker.py")
    cmd = [
        python,
        str(script),
        "--train",
        str(train),
        "--save-dir",
        str(save_dir),
        "--n-steps",
        str(n_steps),
        "--batch-size",
        str(args.batch_size),
        "--d-sae",
        str(args.d_sae),
        "--k",
        str(args.k),
        "--lr",
        str(args.lr),
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
    ]
    for name, value in schedule(n_steps).items():
        cmd += [f"--{name.replace('_', '-')}", str(value)]
    if side == "saelens":
        cmd += ["--heldout", str(heldout)]
        if args.saelens_sparse:
            cmd.append("--sparse-activations")
    return cmd


def others_busy(seconds: float = 3.0) -> float:
    """Cores that other processes keep busy, measured over `seconds` while this script runs nothing."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds


def wait_until_quiet(max_wait: float, threshold: float) -> float:
    """Wait (up to max_wait seconds) until other processes use <= threshold cores; return the last reading."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = others_busy()
        if busy <= threshold or time.monotonic() >= deadline:
            return busy
        print(f"  waiting: other processes keep {busy:.1f} cores busy", flush=True)
        time.sleep(20)


def run_worker(cmd: list[str], threads: int) -> dict:
    """Run one worker process with a fixed thread count; return the JSON line it printed last.

    Adds `others_cores`: the cores other processes kept busy meanwhile (machine CPU time less the worker's).
    """
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TQDM_DISABLE": "1",
        "WANDB_MODE": "disabled",
        "TOKENIZERS_PARALLELISM": "false",
    }
    busy0, child0, t0 = machine_busy_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    busy1, child1, wall = (
        machine_busy_seconds(),
        resource.getrusage(resource.RUSAGE_CHILDREN),
        time.monotonic() - t0,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stderr[-4000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1])
    child_cpu = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    result["others_cores"] = max(0.0, (busy1 - busy0 - child_cpu) / wall)
    return result


def score(save_dir: str, heldout: np.ndarray) -> dict[str, float | int | None]:
    """The one evaluator for both sides: our loader and `sae_quality` on the held-out tokens."""
    from editing_service.sae import load_sae, sae_quality

    return sae_quality(load_sae(save_dir), heldout).model_dump()


def run_all(args: argparse.Namespace, train: Path, heldout_path: Path, n_steps: int) -> dict[str, list[dict]]:
    heldout = np.load(heldout_path)
    results: dict[str, list[dict]] = {"ours": [], "saelens": []}
    for rep in range(args.repeats):
        for side in ("ours", "saelens"):  # alternate, one at a time: 2 cores
            save_dir = args.cache_dir / f"sae_{side}_{rep}"
            quiet = wait_until_quiet(args.max_wait, args.quiet_cores)
            res = run_worker(worker_command(side, args, train, heldout_path, n_steps, save_dir), args.threads)
            res["others_cores_before"] = quiet
            res.update({f"heldout_{k}": v for k, v in score(res["save_dir"], heldout).items()})
            results[side].append(res)
            print(
                f"  run {rep + 1}/{args.repeats} {side:8s} {res['tokens_per_s']:7.0f} tokens/s "
                f"{res['tokens_per_cpu_s']:7.0f} tokens/cpu-s {res['seconds']:6.1f} s  "
                f"held-out FVU {res['heldout_fvu']:.4f}  others busy {res['others_cores']:.2f} cores"
            )
    return results


# ---------------------------------------------------------------------------------------------- report
def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def best(runs: list[dict]) -> float:
    """The fastest run: the least disturbed by other processes (as `timeit` reports its minimum)."""
    return max(r["tokens_per_s"] for r in runs)


def runs_text(runs: list[dict]) -> str:
    return ", ".join(f"{r['tokens_per_s']:,.0f}" for r in runs)


def quality_note(ours_fvu: float, sl_fvu: float) -> str:
    if abs(ours_fvu - sl_fvu) <= 0.01:
        return f"Held-out FVU is about equal (ours {ours_fvu:.3f}, SAELens {sl_fvu:.3f})."
    better = "ours" if ours_fvu < sl_fvu else "SAELens's"
    return (
        f"Held-out FVU: ours {ours_fvu:.3f}, SAELens {sl_fvu:.3f}: {better} SAE reconstructs better after "
        "the same tokens at this lr."
    )


def load_note(results: dict[str, list[dict]], threshold: float) -> str:
    """Say how busy the machine was: other processes' CPU use slows either side's runs."""
    cores = os.cpu_count() or 1
    per_side = "; ".join(
        f"{side} runs " + ", ".join(f"{r['others_cores']:.2f}" for r in runs)
        for side, runs in results.items()
    )
    peak = max(r["others_cores"] for runs in results.values() for r in runs)
    verdict = (
        "quiet machine"
        if peak <= threshold
        else "NOT quiet: the runs' times are inflated by other processes, rerun on a quiet machine"
    )
    return f"Cores kept busy by other processes during the runs (of {cores}): {per_side} ({verdict})."


def source_note(ours: list[dict]) -> str:
    shas = sorted({r["source_sha"] for r in ours})
    note = f"Our trainer: editing_service/sae sources sha256 {', '.join(shas)}"
    return note + (" (CHANGED between runs: rerun)." if len(shas) > 1 else ".")


def render(
    args: argparse.Namespace,
    results: dict[str, list[dict]],
    n_train: int,
    n_heldout: int,
    n_steps: int,
    command: str,
) -> str:
    import torch

    ours, sl = results["ours"], results["saelens"]
    ratio = median(ours, "tokens_per_s") / median(sl, "tokens_per_s")
    sched = schedule(n_steps)
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    rows = [
        ("ours (editing_service)", ours),
        (f"SAELens {sl[0]['versions']['sae_lens']} SAETrainer", sl),
    ]
    table = [
        "| trainer | tokens/s (median) | tokens/s (best) | runs, tokens/s | fit time, s (median) "
        "| held-out FVU | held-out L0 |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, runs in rows:
        table.append(
            f"| {name} | {median(runs, 'tokens_per_s'):,.0f} | {best(runs):,.0f} | {runs_text(runs)} | "
            f"{median(runs, 'seconds'):.1f} | "
            f"{median(runs, 'heldout_fvu'):.4f} | {median(runs, 'heldout_l0'):.1f} |"
        )
    return "\n".join(
        [
            SECTION,
            "",
            f"Ours / SAELens tokens per second: **{ratio:.2f}x** (target >= {TARGET_RATIO}x: {verdict}); "
            f"best run against best run: {best(ours) / best(sl):.2f}x. "
            f"{quality_note(median(ours, 'heldout_fvu'), median(sl, 'heldout_fvu'))}",
            "",
            *table,
            "",
            f"- Machine: {cpu_name()}, {os.cpu_count()} cores, torch threads {args.threads} (both sides); python "
            f"{platform.python_version()}, torch {torch.__version__}, sae-lens {sl[0]['versions']['sae_lens']}"
            f"{' (use_sparse_activations)' if args.saelens_sparse else ''}. {load_note(results, args.quiet_cores)} {source_note(ours)}",
            f"- Data: MiniLM (embedded default) `{SITE}` activations on the `{SPEC}` training subset, "
            f"{n_train:,} tokens x 384, float32, in memory; held-out: {n_heldout:,} tokens of "
            f"{args.heldout_texts} validation texts.",
            f"- Settings (both): TopK, d_in 384, d_sae {args.d_sae}, k {args.k}, batch {args.batch_size}, "
            f"{n_steps} steps = {n_steps * args.batch_size:,} tokens, Adam lr {args.lr:g} with "
            f"{sched['warmup_steps']} warm-up and {sched['decay_steps']} linear-decay steps, dead after "
            f"{sched['dead_window_steps']} steps without firing (aux-k loss), input scaled to E||x||^2 = d_in "
            f"(folded at the end), seed {args.seed}. Each side keeps its own defaults otherwise (SAELens: decoder "
            "rows start at norm 0.1, rescale_acts_by_decoder_norm, k_aux d_in/2, grad-norm clipping 1.0, dense "
            "[batch, d_sae] codes; ours: unit-norm decoder, geometric-median b_dec, sparse top-k backward).",
            f"- Timing: one whole `fit()` call per run (statistics, training loop, weight folding; not loading the "
            f".npy), after an untimed 3-step warm-up fit in the same process; {args.repeats} runs per side, each a "
            "fresh process, sides alternating, never concurrent, each started once other processes use <= "
            f"{args.quiet_cores:g} cores (waiting up to {args.max_wait:g} s). tokens/s = training tokens / fit "
            "wall seconds.",
            "- FVU = sum ||x - x_hat||^2 / sum ||x - mean x||^2 on the held-out tokens, by `sae_quality` for "
            "both SAEs (SAELens's saved with `save_inference_model`, read with `load_sae`); lower is better.",
            "",
            "Command (after `make bench-env`):",
            "",
            "```",
            command,
            "```",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.saelens_python.exists():
        sys.exit(
            f"{args.saelens_python} not found: run `make bench-env` (benchmarks/setup_saelens_env.sh) first"
        )
    import torch

    torch.set_num_threads(args.threads)
    args.cache_dir = args.cache_dir.resolve()
    train_path, heldout_path = cache_activations(args.cache_dir, args.heldout_texts, args.seed)
    n_train = int(np.load(train_path, mmap_mode="r").shape[0])
    n_heldout = int(np.load(heldout_path, mmap_mode="r").shape[0])
    tokens = args.tokens if args.tokens is not None else 2 * n_train
    n_steps = max(1, math.ceil(tokens / args.batch_size))
    print(
        f"training {n_steps} steps x {args.batch_size} = {n_steps * args.batch_size:,} tokens per run, "
        f"{args.repeats} runs per side"
    )
    results = run_all(args, train_path, heldout_path, n_steps)

    command = ".venv/bin/python benchmarks/sae_training.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    section = render(args, results, n_train, n_heldout, n_steps, command.strip())
    print()
    print(section)
    (args.cache_dir / "results.json").write_text(json.dumps(results, indent=1))
    if not args.no_write:
        write_section(
            ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out), SECTION, section
        )
        print(f"wrote the {SECTION!r} section of {args.out}")


if __name__ == "__main__":
    main()
