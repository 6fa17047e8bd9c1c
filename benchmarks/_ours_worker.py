"""Our side of benchmarks/sae_training.py: one timed `editing_service.sae.SAETrainer.fit()`.

Runs in the project's venv, in its own process (as the SAELens side does), so neither side inherits the
other's allocator state or the caller's loaded classifier. It reads the training activations from a .npy
file into memory, runs one short untimed warm-up fit, then times one full `fit()` call (input scale and
b_dec statistics, training loop, weight folding). The trained SAE is saved in the SAELens layout for the
caller to score. Prints one JSON line.

Usage (from benchmarks/sae_training.py):
    .venv/bin/python benchmarks/_ours_worker.py --train T.npy --save-dir DIR --n-steps 130 --batch-size 4096 \
        --d-sae 2048 --k 32 --lr 5e-4 --warmup-steps 6 --decay-steps 26 --dead-window-steps 13 --threads 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import editing_service.sae
from editing_service.sae import SAETrainer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help=".npy [n_tokens, d_in] float32 training activations")
    p.add_argument("--save-dir", required=True, help="where the trained SAE is saved (SAELens layout)")
    p.add_argument("--n-steps", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--d-sae", type=int, default=2048)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--warmup-steps", type=int, default=0, help="linear lr warm-up steps")
    p.add_argument("--decay-steps", type=int, default=0, help="final linear lr decay-to-0 steps")
    p.add_argument("--dead-window-steps", type=int, default=1000, help="steps without firing => dead")
    p.add_argument("--warmup-fit-steps", type=int, default=3, help="steps of the untimed warm-up fit")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def source_hash() -> str:
    """sha256 (12 hex digits) of editing_service/sae/*.py: which version of our trainer was timed."""
    folder = Path(editing_service.sae.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def make_trainer(args: argparse.Namespace, n_steps: int) -> SAETrainer:
    """Our TopK trainer with the shared settings; its own defaults for everything else."""
    return SAETrainer(
        architecture="topk",
        d_sae=args.d_sae,
        k=args.k,
        lr=args.lr,
        batch_size=args.batch_size,
        n_tokens=n_steps * args.batch_size,
        warmup_steps=min(args.warmup_steps, n_steps // 2),
        # int(fraction * n_steps) must give back decay_steps: aim at the middle of the step.
        lr_decay_fraction=(args.decay_steps + 0.5) / n_steps if n_steps == args.n_steps else 0.0,
        dead_window=args.dead_window_steps * args.batch_size,  # ours counts tokens, SAELens steps
        seed=args.seed,
        device="cpu",
        dtype="float32",
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    acts = np.load(args.train)  # in memory before any timing

    make_trainer(args, args.warmup_fit_steps).fit(acts)  # untimed warm-up: allocator, threads, kernels

    trainer = make_trainer(args, args.n_steps)
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.fit(acts)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    n_tokens = trainer.n_steps_ * args.batch_size

    trainer.save(args.save_dir)
    result = {
        "side": "ours",
        "n_steps": trainer.n_steps_,
        "n_tokens": n_tokens,
        "seconds": seconds,
        "tokens_per_s": n_tokens / seconds,
        "cpu_seconds": cpu_seconds,  # all threads of this process: less sensitive to other processes' load
        "tokens_per_cpu_s": n_tokens / cpu_seconds,
        "loadavg_1min": [load_before, os.getloadavg()[0]],  # before and after the timed fit
        "loop_tokens_per_s": trainer.tokens_per_second_,  # the trainer's own count: training loop only
        "final_train_fvu": trainer.history_[-1]["fvu"],
        "dead_fraction_train": trainer.history_[-1]["dead_fraction"],
        "save_dir": args.save_dir,
        "source_sha": source_hash(),
        "versions": {"torch": torch.__version__, "python": sys.version.split()[0]},
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
