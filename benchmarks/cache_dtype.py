"""Activation-cache storage dtype: disk, peak memory and whether float16 storage changes the results.

    PYTHONPATH=. python benchmarks/cache_dtype.py [--out runs/bench_cache_dtype] [--write BENCHMARKS.md]

Runs the default `run` (embedded MiniLM, the shipped Bias in Bios spec, `--flags auto`, every default)
once per cache dtype, each in its own process, and compares: the activation cache's size on disk, the
process's peak resident memory, each SAE's FVU on the validate split, the auto flags (overlap of the
flagged (site, feature) sets: same seeds, so the same SAE initialisation) and the report's headline
figures. It also scores the float32 run's SAEs on the float32 validate tokens rounded to float16, which
isolates the rounding itself from SAE training.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402
from markdown_sections import write_section  # noqa: E402

HEADING = "## Activation cache: float16 vs float32 storage"
SPEC = "biasbios_surgeon_nurse"
ROWS = ("original", "shift", "shift_retrained")
FIGURES = ("accuracy", "group_balanced_accuracy", "worst_group_accuracy", "protected_attribute_accuracy")


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def worker(dtype: str, out: Path) -> None:
    from editing_service.pipeline import run_all
    from editing_service.settings import ModelSettings, RunSettings

    torch.set_num_threads(2)
    run_all(RunSettings(spec=SPEC, cache_dtype=dtype, model=ModelSettings(device="cpu")), out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    (out / "bench.json").write_text(json.dumps({"peak_rss_bytes": peak,
                                                "cache_bytes": folder_bytes(out / "activations")}))


def rounding_fvu(out: Path) -> dict[str, tuple[float, float]]:
    """{site: (FVU on float32 tokens, FVU on the same tokens rounded to float16)} of out's SAEs."""
    from editing_service.activations import ActivationCache
    from editing_service.sae import load_sae, sae_quality

    cache = ActivationCache.open(out / "activations" / "validate")
    rows = np.sort(np.random.default_rng(0).choice(cache.n_tokens, size=min(16384, cache.n_tokens), replace=False))
    result = {}
    for site in cache.site_names:
        sae = load_sae(out / "saes" / site)
        x = cache.read(site, rows)
        exact = sae_quality(sae, x)["fvu"]
        rounded = sae_quality(sae, x.astype(np.float16).astype(np.float32))["fvu"]
        result[site] = (float(exact), float(rounded))
    return result


def summary(out: Path) -> dict:
    bench = json.loads((out / "bench.json").read_text())
    quality = json.loads((out / "saes" / "quality.json").read_text())["sites"]
    report = json.loads((out / "report.json").read_text())
    flags = {(f["site"], f["feature"]) for f in report["flags"]}
    rows = {r["name"]: {k: r[k] for k in FIGURES} for r in report["rows"] if r["name"] in ROWS}
    return {**bench, "fvu": {s: q["validate"]["fvu"] for s, q in quality.items()}, "flags": flags, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_cache_dtype"))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16"])
    parser.add_argument("--write", type=Path, default=None, help="BENCHMARKS.md to write the section into")
    parser.add_argument("--worker", nargs=2, metavar=("DTYPE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]))
        return
    for dtype in args.dtypes:
        out = args.out / dtype
        if not (out / "bench.json").is_file():
            subprocess.run([sys.executable, __file__, "--worker", dtype, str(out)], check=True)
    runs = {dtype: summary(args.out / dtype) for dtype in args.dtypes}
    base, other = runs[args.dtypes[0]], runs[args.dtypes[1]]
    lines = [HEADING, "",
             f"Command: `PYTHONPATH=. python benchmarks/cache_dtype.py --write BENCHMARKS.md` (each run in its own "
             f"process, 2 torch threads, CPU: {cpu_name()}). The default `run` ({SPEC}, embedded MiniLM, "
             "every default setting, `--flags auto`) once per cache dtype.", "",
             "| measure | " + " | ".join(args.dtypes) + " |", "|---|" + "---|" * len(args.dtypes)]
    lines.append("| activation cache on disk (train + validate) | "
                 + " | ".join(f"{runs[d]['cache_bytes'] / 2**30:.2f} GiB" for d in args.dtypes) + " |")
    lines.append("| peak resident memory of the run | "
                 + " | ".join(f"{runs[d]['peak_rss_bytes'] / 2**30:.2f} GiB" for d in args.dtypes) + " |")
    for site in base["fvu"]:
        lines.append(f"| FVU {site} (validate) | " + " | ".join(f"{runs[d]['fvu'][site]:.4f}" for d in args.dtypes)
                     + " |")
    for row in ROWS:
        for key in FIGURES:
            values = [runs[d]["rows"][row][key] for d in args.dtypes]
            if all(v is not None for v in values):
                lines.append(f"| {row} {key} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    jaccard = len(base["flags"] & other["flags"]) / max(1, len(base["flags"] | other["flags"]))
    lines.append("| auto flags | " + " | ".join(str(len(runs[d]["flags"])) for d in args.dtypes) + " |")
    fvu_gap = max(abs(base["fvu"][s] - other["fvu"][s]) for s in base["fvu"])
    row_gap = max(abs(base["rows"][r][k] - other["rows"][r][k]) for r in ROWS for k in FIGURES
                  if base["rows"][r][k] is not None and other["rows"][r][k] is not None)
    rounding = rounding_fvu(args.out / args.dtypes[0])
    round_gap = max(abs(a - b) for a, b in rounding.values())
    lines += ["", f"Largest differences, {args.dtypes[1]} vs {args.dtypes[0]}: FVU {fvu_gap:.4f}; report figures "
              f"{row_gap:.4f}; flagged-feature overlap (Jaccard) {jaccard:.3f}. The {args.dtypes[0]} run's SAEs scored "
              f"on its validate tokens rounded to float16: FVU changes by at most {round_gap:.2e}.", ""]
    section = "\n".join(lines)
    print(section)
    if args.write is not None:
        write_section(args.write, HEADING, section)


if __name__ == "__main__":
    main()
