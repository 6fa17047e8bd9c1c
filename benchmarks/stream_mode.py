"""Disk and peak memory of the `saes` step in disk mode and in stream mode, against the number of texts.

    PYTHONPATH=. python benchmarks/stream_mode.py [--texts 250 500 1000] [--write BENCHMARKS.md]

On the embedded MiniLM (6 block outputs), for N training texts of biasbios_surgeon_nurse (the biased
training subset, cycled) and 50 validate texts, each point runs `run_saes` in a fresh process with
`cache_mode` disk or stream (default stream settings: a 131,072-token buffer per site, a 16,384-token
sample on disk) and records the training cache's bytes on disk, the process's peak resident memory, the
wall time and the SAEs' mean validate FVU. SAEs: TopK 512 x k=32, 1 epoch (smaller than the default
2048 to keep the benchmark short; the SAE size does not change what is cached).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402
from markdown_sections import write_section  # noqa: E402

HEADING = "## Activation cache: stream mode vs disk mode"
SPEC = "biasbios_surgeon_nurse"
N_VALIDATE = 50
SPEC_YAML = """
name: stream_bench
source: {kind: file, path: texts.csv}
splits: {kind: column, column: split, names: [train, validate, test]}
text_column: text
label_column: occupation
labels: [nurse, surgeon]
subsets: {train: {split: train}, validate: {split: validate}, test: {split: test}}
roles: {train: train, validate: validate, evaluate: test}
"""


def write_spec(root: Path, n: int) -> Path:
    """A spec over N training texts of the shipped spec's training subset (cycled) and 50 validate texts."""
    from editing_service.data import load_role, load_spec

    spec = load_spec(SPEC)
    rows = []
    for role, split, count in (("train", "train", n), ("validate", "validate", N_VALIDATE),
                               ("validate", "test", N_VALIDATE)):
        subset = load_role(spec, role)
        rows += [{"split": split, "text": subset.texts[i % len(subset.texts)],
                  "occupation": subset.label_names[subset.labels[i % len(subset.texts)]]} for i in range(count)]
    folder = root / f"spec-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "texts.csv", index=False)
    (folder / "spec.yaml").write_text(SPEC_YAML)
    return folder / "spec.yaml"


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def worker(mode: str, n: int, root: Path) -> dict:
    from editing_service.pipeline import run_saes
    from editing_service.settings import ModelSettings, SAERunSettings, SAESettings

    torch.set_num_threads(1)
    out = root / f"run-{mode}-{n}"
    settings = SAERunSettings(spec=str(write_spec(root, n)), model=ModelSettings(device="cpu"), cache_mode=mode,
                              splice_check=False, sae=SAESettings(d_sae=512, k=32, n_epochs=1))
    started = time.perf_counter()
    report = run_saes(settings, out)
    seconds = time.perf_counter() - started
    train = out / "activations" / "train"
    result = {
        "mode": mode, "n_texts": n, "cached_tokens": report.training_data.cached_tokens,
        "train_cache_bytes": folder_bytes(train), "run_bytes": folder_bytes(out),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "seconds": seconds,
        "fvu": float(np.mean([site.validation.fvu for site in report.sites.values()])),
    }
    subprocess.run(["rm", "-rf", str(out)], check=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", nargs="+", type=int, default=[250, 500, 1000])
    parser.add_argument("--root", type=Path, default=Path("runs/bench_stream_mode"))
    parser.add_argument("--write", type=Path, default=None)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    if args.worker:
        mode, n = args.worker
        print(json.dumps(worker(mode, int(n), args.root)))
        return
    results = args.root / "results.jsonl"
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.is_file() else []
    for n in args.texts:
        for mode in ("disk", "stream"):
            if any(p["mode"] == mode and p["n_texts"] == n for p in done):
                continue
            run = subprocess.run([sys.executable, __file__, "--root", str(args.root), "--worker", mode, str(n)],
                                 check=True, capture_output=True, text=True)
            point = json.loads(run.stdout.strip().splitlines()[-1])
            print(point, flush=True)
            done.append(point)
            with results.open("a") as handle:
                handle.write(json.dumps(point) + "\n")
    lines = [HEADING, "", f"Command: `OMP_NUM_THREADS=1 nice -n 10 env PYTHONPATH=. python benchmarks/stream_mode.py "
             f"--write BENCHMARKS.md` (one process per point, 1 torch thread, CPU: {cpu_name()}). Embedded MiniLM, "
             f"6 block outputs, float16 cache, `saes` step with TopK 512 x k=32 SAEs for 1 epoch, {N_VALIDATE} validate "
             "texts; stream mode with its default buffer (131,072 tokens per site) and on-disk sample (16,384 tokens).",
             "", "| texts | mode | training tokens on disk | training cache | whole run folder | peak memory | "
             "time | validate FVU |", "|---|---|---|---|---|---|---|---|"]
    for p in sorted(done, key=lambda p: (p["n_texts"], p["mode"])):
        lines.append(f"| {p['n_texts']:,} | {p['mode']} | {p['cached_tokens']:,} | "
                     f"{p['train_cache_bytes'] / 2**20:,.1f} MiB | {p['run_bytes'] / 2**20:,.1f} MiB | "
                     f"{p['peak_rss_bytes'] / 2**20:,.0f} MiB | {p['seconds']:,.0f} s | {p['fvu']:.3f} |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write is not None:
        write_section(args.write, HEADING, section)


if __name__ == "__main__":
    main()
