"""SAELens side of benchmarks/sae_training.py: one timed `SAETrainer.fit()` on cached activations.

Runs inside .venv-saelens (made by benchmarks/setup_saelens_env.sh), never in the project's venv, and
imports nothing from `editing_service`. It reads the training activations from a .npy file into memory,
feeds SAELens's `SAETrainer` an endless iterator of shuffled batches (a new permutation each epoch, like
our trainer's stream), runs one short untimed warm-up fit, then times one full `fit()` call (activation
norm estimate, training loop, weight folding). The trained SAE is written in SAELens's inference layout so
the caller can score it with the same function it uses for ours; the FVU on the held-out tokens is also
computed here with SAELens's own forward pass, as a cross-check. Prints one JSON line.

Usage (from benchmarks/sae_training.py):
    .venv-saelens/bin/python benchmarks/_saelens_worker.py --train T.npy --heldout H.npy --save-dir DIR \
        --n-steps 130 --batch-size 4096 --d-sae 2048 --k 32 --lr 5e-4 --warmup-steps 6 --decay-steps 26 \
        --dead-window-steps 13 --threads 2 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator

os.environ.setdefault("TQDM_DISABLE", "1")  # SAETrainer.fit always opens a tqdm bar
os.environ.setdefault("WANDB_MODE", "disabled")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sae_lens import __version__ as SAE_LENS_VERSION  # noqa: E402
from sae_lens.config import LoggingConfig, SAETrainerConfig  # noqa: E402
from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig  # noqa: E402
from sae_lens.training.sae_trainer import SAETrainer  # noqa: E402

# Batches SAELens uses to estimate its activation scale (expected_average_only_in): 4 x 4096 = 16384 rows,
# the sample size our trainer uses for its own scale.
NORM_ESTIMATE_BATCHES = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help=".npy [n_tokens, d_in] float32 training activations")
    p.add_argument("--heldout", required=True, help=".npy [n, d_in] float32 held-out activations")
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
    p.add_argument(
        "--sparse-activations", action="store_true", help="TopKTrainingSAEConfig.use_sparse_activations"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def batch_stream(acts: torch.Tensor, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless shuffled batches [batch_size, d_in]: a fresh permutation of all rows every epoch."""
    gen = torch.Generator().manual_seed(seed)
    n = acts.shape[0]
    while True:
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n - batch_size + 1, batch_size):
            yield acts[perm[start : start + batch_size]]


def make_trainer(acts: torch.Tensor, args: argparse.Namespace, n_steps: int) -> SAETrainer:
    """A TopK SAE and its SAETrainer with wandb, evals and checkpoints off."""
    torch.manual_seed(args.seed)
    sae_cfg = TopKTrainingSAEConfig(
        d_in=int(acts.shape[1]),
        d_sae=args.d_sae,
        k=args.k,
        dtype="float32",
        device="cpu",
        normalize_activations="expected_average_only_in",
        use_sparse_activations=args.sparse_activations,
    )
    sae = TopKTrainingSAE(sae_cfg)
    warmup = min(args.warmup_steps, n_steps // 2)
    decay = min(args.decay_steps, n_steps - warmup - 1) if n_steps > warmup + 1 else 0
    trainer_cfg = SAETrainerConfig(
        total_training_samples=n_steps * args.batch_size,
        train_batch_size_samples=args.batch_size,
        lr=args.lr,
        lr_end=args.lr,  # the constant scheduler decays from lr (and asserts lr_end is set)
        lr_scheduler_name="constant",
        lr_warm_up_steps=warmup,
        lr_decay_steps=decay,
        device="cpu",
        autocast=False,
        dead_feature_window=args.dead_window_steps,
        feature_sampling_window=10**9,  # its only use without wandb is a log dict
        n_checkpoints=0,
        checkpoint_path=None,
        save_final_checkpoint=False,
        logger=LoggingConfig(log_to_wandb=False),
        n_batches_for_norm_estimate=NORM_ESTIMATE_BATCHES,
    )
    stream = batch_stream(acts, args.batch_size, args.seed)
    return SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=stream, evaluator=None)


@torch.no_grad()
def heldout_fvu(sae: TopKTrainingSAE, x: torch.Tensor, batch_size: int = 4096) -> dict[str, float]:
    """FVU = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 and mean L0, with SAELens's own forward."""
    sae.eval()
    err2, l0 = 0.0, 0.0
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size]
        feats = sae.encode(xb)
        feats = feats.to_dense() if feats.is_sparse else feats
        err2 += float((xb.double() - sae.decode(feats).double()).pow(2).sum())
        l0 += float((feats > 0).sum())
    xd = x.double()
    total = float((xd - xd.mean(0)).pow(2).sum())
    return {"fvu": err2 / total, "l0": l0 / x.shape[0]}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    acts = torch.from_numpy(np.load(args.train))  # in memory before any timing
    heldout = torch.from_numpy(np.load(args.heldout))

    make_trainer(acts, args, args.warmup_fit_steps).fit()  # untimed warm-up: allocator, threads, kernels

    trainer = make_trainer(acts, args, args.n_steps)
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    sae = trainer.fit()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    n_tokens = trainer.n_training_samples  # training tokens, not counting the norm-estimate batches

    sae.save_inference_model(args.save_dir)
    quality = heldout_fvu(sae, heldout)
    result = {
        "side": "saelens",
        "n_steps": trainer.n_training_steps,
        "n_tokens": n_tokens,
        "seconds": seconds,
        "tokens_per_s": n_tokens / seconds,
        "cpu_seconds": cpu_seconds,  # all threads of this process: less sensitive to other processes' load
        "tokens_per_cpu_s": n_tokens / cpu_seconds,
        "loadavg_1min": [load_before, os.getloadavg()[0]],  # before and after the timed fit
        "fvu_own": quality["fvu"],
        "l0_own": quality["l0"],
        "dead_features": int(trainer.dead_neurons.sum()),
        "save_dir": args.save_dir,
        "versions": {
            "sae_lens": SAE_LENS_VERSION,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
        },
        "threads": torch.get_num_threads(),
        "sparse_activations": args.sparse_activations,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
