"""Memory and time of a classifier held whole against one offloaded with `--device-map auto` (CPU: the rest on disk).

    PYTHONPATH=. python benchmarks/offload.py [--texts 64] [--fractions 0.5 0.25] [--write BENCHMARKS.md]

A random BERT-base-sized sequence classifier (12 layers, width 768, the embedded MiniLM's vocabulary: 110M
parameters, 438 MB of float32 safetensors) is saved once; each case loads it in a fresh process, as a whole or
with `DeviceMap(device_gb=fraction x the weights)`, and classifies the same validate bios. Recorded per case:
the anonymous resident memory the model adds (RssAnon over the process before loading, after `malloc_trim`)
after loading and after the pass, the file-backed resident memory it adds (RssFile: pages of the memory-mapped
safetensors checkpoint, which the kernel may drop), the process's peak resident memory (VmHWM, both kinds), the
load and the classification times, and the largest difference of the class probabilities from the whole model's.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402
from markdown_sections import write_section  # noqa: E402

HEADING = "## Offloading with --device-map auto (CPU: what does not fit goes to disk)"
CLASSES = ["nurse", "surgeon"]


def save_model(folder: Path) -> float:
    """The random BERT-base classifier with the embedded MiniLM's tokenizer; returns its weights' GiB."""
    import transformers

    from editing_service.model.load import embedded_default_path

    tokenizer = transformers.AutoTokenizer.from_pretrained(embedded_default_path())
    config = transformers.BertConfig(vocab_size=len(tokenizer), num_labels=2, id2label=dict(enumerate(CLASSES)),
                                     label2id={c: i for i, c in enumerate(CLASSES)})
    transformers.set_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1024**3


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(folder: str, device_gb: float | None, texts: int, out: str) -> None:
    """One case in this process: load, classify, write the figures and the probabilities."""
    from editing_service.data import load_role, load_spec
    from editing_service.model import load_classifier
    from editing_service.model.placement import DeviceMap, placement_summary

    bios = load_role(load_spec("biasbios_surgeon_nurse"), "validate").texts[:texts]
    before = resident()
    started = time.perf_counter()
    classifier = load_classifier(folder, classes=CLASSES, device="cpu",
                                 device_map=None if device_gb is None else DeviceMap(device_gb=device_gb))
    loaded = time.perf_counter()
    after_load = resident()
    peak_load = status_kb("VmHWM") / 1024
    proba = classifier.predict_proba(bios, batch_size=16)
    done = time.perf_counter()
    after = resident()
    np.save(out + ".npy", proba)
    Path(out + ".json").write_text(json.dumps({
        "load_s": loaded - started, "predict_s": done - loaded, "peak_load_mb": peak_load, "peak_mb": status_kb("VmHWM") / 1024,
        "anon_load_mb": after_load[0] - before[0], "anon_mb": after[0] - before[0], "file_mb": after[1] - before[1],
        "placed": placement_summary(classifier.backbone) or "all on cpu",
    }))


def resident() -> tuple[float, float]:
    """(anonymous, file-backed) resident MiB of this process, after handing freed heap back to the system."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return status_kb("RssAnon") / 1024, status_kb("RssFile") / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.5, 0.25])
    parser.add_argument("--write", default=None)
    parser.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, device_gb, texts, out = args.child
        child(folder, None if device_gb == "none" else float(device_gb), int(texts), out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bert-base-random"
        weights_gb = save_model(folder)
        rows, whole = [], None
        for fraction in [None, *args.fractions]:
            budget = "none" if fraction is None else f"{fraction * weights_gb:.6f}"
            out = str(Path(tmp) / f"case-{budget}")
            subprocess.run([sys.executable, __file__, "--child", str(folder), budget, str(args.texts), out], check=True)
            figures = json.loads(Path(out + ".json").read_text())
            proba = np.load(out + ".npy")
            whole = proba if whole is None else whole
            rows.append({"case": "whole" if fraction is None else f"device_map auto, {fraction:g} of the weights",
                         **figures, "max_diff": float(np.abs(proba - whole).max())})
    lines = [f"Command: `PYTHONPATH=. python benchmarks/offload.py --texts {args.texts} --fractions "
             f"{' '.join(f'{f:g}' for f in args.fractions)}`. Machine: {cpu_name()}, torch threads as set by the "
             f"environment. Model: random BERT-base sequence classifier, {weights_gb * 1024:.0f} MiB of float32 "
             f"weights; {args.texts} validate bios, batches of 16.", "",
             "| case | placed (modules) | + anonymous MiB, loaded / classified | + file MiB | peak resident MiB, loaded / classified | "
             "load s | classify s | max abs prob. diff |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['placed']} | {r['anon_load_mb']:.0f} / {r['anon_mb']:.0f} | "
                     f"{r['file_mb']:.0f} | {r['peak_load_mb']:.0f} / {r['peak_mb']:.0f} | {r['load_s']:.1f} | {r['predict_s']:.1f} | "
                     f"{r['max_diff']:.1e} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(Path(args.write), HEADING, text)


if __name__ == "__main__":
    main()
