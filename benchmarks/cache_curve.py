"""How the activation cache's disk and the caching process's peak memory grow with the number of texts.

    PYTHONPATH=. python benchmarks/cache_curve.py [--texts 250 500 1000 2000 4000] [--write BENCHMARKS.md]

For two models, the embedded MiniLM (6 blocks, width 384: the default run) and a random 12-layer,
768-wide BERT built from a config (MiniLM's tokenizer), and for float32 and float16 storage, it caches
every block output of N Bias in Bios texts (the shipped spec's texts, cycled) in a fresh process per
point, and records the cache's bytes on disk, its tokens and the process's peak resident memory. The line
fitted through the points gives the figures at 20,000 and 100,000 texts (extrapolated, marked so).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402
from markdown_sections import write_section  # noqa: E402

HEADING = "## Activation cache: disk and memory vs number of texts"
SPEC = "biasbios_surgeon_nurse"
MODELS = ("minilm", "random-12x768")


def texts(n: int) -> list[str]:
    from editing_service.data import load_role, load_spec

    spec = load_spec(SPEC)
    pool = [t for role in ("train", "validate", "evaluate") for t in load_role(spec, role).texts]
    return [pool[i % len(pool)] for i in range(n)]


def model_folder(name: str, root: Path) -> Path | None:
    if name == "minilm":
        return None
    from transformers import AutoTokenizer, BertConfig, BertModel

    from editing_service.model import embedded_default_path

    folder = root / name
    if not (folder / "config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(embedded_default_path())
        torch.manual_seed(0)
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                            intermediate_size=3072, max_position_embeddings=512)
        BertModel(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def worker(model: str, n: int, dtype: str, root: Path) -> dict:
    from editing_service.activations import collect_activations
    from editing_service.model import load_classifier

    torch.set_num_threads(2)
    clf = load_classifier(model_folder(model, root), classes=["nurse", "surgeon"], max_length=256)
    out = Path(tempfile.mkdtemp(dir=root))
    cache = collect_activations(clf, texts(n), sites=clf.sites(), out_dir=out, dtype=dtype, batch_size=32,
                                progress=False)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    result = {"model": model, "n_texts": n, "dtype": dtype, "n_tokens": cache.n_tokens, "n_sites": len(clf.sites()),
              "cache_bytes": size, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    subprocess.run(["rm", "-rf", str(out)], check=True)
    return result


def fit(points: list[dict], key: str, at: int) -> float:
    x = np.array([p["n_texts"] for p in points], dtype=float)
    y = np.array([p[key] for p in points], dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope * at + intercept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", nargs="+", type=int, default=[250, 500, 1000, 2000, 4000])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16"])
    parser.add_argument("--root", type=Path, default=Path("runs/bench_cache_curve"))
    parser.add_argument("--write", type=Path, default=None)
    parser.add_argument("--report-only", action="store_true", help="write the table of the points measured so far")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    if args.worker:
        model, n, dtype = args.worker
        print(json.dumps(worker(model, int(n), dtype, args.root)))
        return
    results = args.root / "results.jsonl"
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.is_file() else []
    for model in [] if args.report_only else args.models:
        for dtype in args.dtypes:
            for n in args.texts:
                if any(p["model"] == model and p["dtype"] == dtype and p["n_texts"] == n for p in done):
                    continue
                run = subprocess.run([sys.executable, __file__, "--root", str(args.root), "--worker", model, str(n),
                                      dtype], check=True, capture_output=True, text=True)
                point = json.loads(run.stdout.strip().splitlines()[-1])
                print(point, flush=True)
                done.append(point)
                with results.open("a") as handle:
                    handle.write(json.dumps(point) + "\n")
    lines = [HEADING, "", f"Command: `PYTHONPATH=. python benchmarks/cache_curve.py --write BENCHMARKS.md` (one process "
             f"per point, 2 torch threads, CPU: {cpu_name()}). Every block output cached (6 sites for MiniLM, 12 for "
             "the 768-wide model), max 256 tokens per text; peak memory is the caching process's (model included).",
             "", "| model | storage | texts | tokens | cache on disk | peak memory |", "|---|---|---|---|---|---|"]
    for model, dtype in dict.fromkeys((p["model"], p["dtype"]) for p in done):
        points = sorted((p for p in done if p["model"] == model and p["dtype"] == dtype), key=lambda p: p["n_texts"])
        for p in points:
            lines.append(f"| {model} | {dtype} | {p['n_texts']:,} | {p['n_tokens']:,} | "
                         f"{p['cache_bytes'] / 2**20:,.0f} MiB | {p['peak_rss_bytes'] / 2**20:,.0f} MiB |")
        for at in (20_000, 100_000) if len(points) > 1 else ():
            lines.append(f"| {model} | {dtype} | {at:,} (extrapolated) | | "
                         f"{fit(points, 'cache_bytes', at) / 2**30:,.1f} GiB | "
                         f"{fit(points, 'peak_rss_bytes', at) / 2**30:,.2f} GiB |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write is not None:
        write_section(args.write, HEADING, section)


if __name__ == "__main__":
    main()
