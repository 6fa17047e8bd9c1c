"""SAE quality at the pipeline's budget: which default training settings reach FVU <= 0.20 at L0 <= 32.

    .venv/bin/python benchmarks/sae_defaults.py --run runs/default [--sites blocks.2.out blocks.5.out]
        [--grid "batch_size=4096" "batch_size=1024" ...] [--json benchmarks/results/sae_defaults.json]

Reads the activation caches of a discovered run (training tokens to fit on, validate tokens held out),
trains one SAE per site and per candidate setting (each candidate overrides fields of the run's
`SAESettings`, e.g. `architecture="batchtopk",batch_size=1024`, or passes a trainer argument that the settings do
not hold, e.g. `aux_coefficient=0.03125`), and prints held-out FVU, L0, dead fraction and the CPU and wall
seconds of each fit. The same
trainer and the same quality function as the pipeline; nothing else differs between candidates.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from editing_service.activations import ActivationCache
from editing_service.sae import SAETrainer, sae_quality
from editing_service.settings import RunSettings, SAESettings


def parse_override(text: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for part in text.split(","):
        key, value = part.split("=")
        out[key.strip()] = json.loads(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--sites", nargs="*", default=None)
    parser.add_argument("--grid", nargs="*", default=["batch_size=4096"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/sae_defaults.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = RunSettings.model_validate_json((args.run / "run.json").read_text())
    train = ActivationCache.open(args.run / "activations" / "train")
    validate = ActivationCache.open(args.run / "activations" / "validate")
    sites = args.sites or train.site_names
    results = []
    for candidate in args.grid:
        override = parse_override(candidate)
        fields = {key: value for key, value in override.items() if key in SAESettings.model_fields}
        trainer_only = {key: value for key, value in override.items() if key not in fields}  # e.g. aux_coefficient
        kwargs = {**settings.sae.model_copy(update=fields).trainer_kwargs(), **trainer_only}
        for site in sites:
            start, wall = time.process_time(), time.perf_counter()
            trainer = SAETrainer(**kwargs, hook_name=site).fit(train.site(site))
            cpu, wall = time.process_time() - start, time.perf_counter() - wall
            quality = sae_quality(trainer.sae_, validate.site(site))
            row = {"candidate": candidate, "site": site, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
                   "fvu": round(float(quality.fvu), 4), "l0": round(quality.l0, 1),
                   "dead": round(quality.dead_fraction, 3)}
            results.append(row)
            print(json.dumps(row), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
