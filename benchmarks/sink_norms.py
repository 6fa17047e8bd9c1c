"""How much of each site's activation lives on a text's first token: the attention sink of decoders.

    .venv/bin/python benchmarks/sink_norms.py --model runs/models/smollm2-135m --sites blocks.12.out blocks.29.out

Runs the classifier over the first `--texts` validate bios of the shipped spec and prints, per site, the mean
norm of the first token's output, the median and largest norm of the other real tokens, and the first token's
share of the site's total sum of squares (what an SAE's FVU divides by): 1 - (the other tokens' sum of squares
about their mean) / (all tokens' sum of squares about theirs). A share near 1 means that an SAE trained on every
token mostly learns that one token, which is why decoders' sink positions (`FamilyRule.sink_positions`) are left
out of the SAEs and the edit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from editing_service.data import load_role, load_spec
from editing_service.model import capture, load_classifier
from editing_service.model.batching import length_sorted_batches
from editing_service.model.load import embedded_default_path


def variance(rows: torch.Tensor) -> float:
    return float(rows.double().var(0).sum())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--sites", nargs="+", required=True)
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--spec", default="biasbios_surgeon_nurse")
    args = parser.parse_args(argv)
    spec = load_spec(args.spec)
    classifier = load_classifier(args.model or embedded_default_path(), classes=list(spec.labels))
    texts = load_role(spec, "validate").texts[: args.texts]
    sites = classifier.resolve_sites(args.sites)
    first: dict[str, list[torch.Tensor]] = {s.name: [] for s in sites}
    rest: dict[str, list[torch.Tensor]] = {s.name: [] for s in sites}
    for _, batch in length_sorted_batches(classifier.tokenizer, texts, batch_size=16,
                                          max_length=classifier.max_length):
        mask = batch["attention_mask"].bool()
        is_first = mask & (mask.cumsum(-1) == 1)
        with torch.inference_mode(), capture(classifier.backbone, sites) as store:
            classifier.run_backbone(batch["input_ids"], batch["attention_mask"])
        for site in sites:
            first[site.name].append(store[site.name][is_first].float())
            rest[site.name].append(store[site.name][mask & ~is_first].float())
    print(f"{classifier.source.name_or_path}: {len(texts)} validate texts; sink positions of its family rule: "
          f"{classifier.rule.sink_positions}")
    print("| site | first token's norm | other tokens' norm, median / max | first token's share of the sum of squares |")
    print("|---|---:|---:|---:|")
    for site in sites:
        f, r = torch.cat(first[site.name]), torch.cat(rest[site.name])
        share = 1 - variance(r) * (len(r) - 1) / (variance(torch.cat([f, r])) * (len(f) + len(r) - 1))
        norms = r.norm(dim=-1)
        print(f"| {site.name} | {float(f.norm(dim=-1).mean()):,.1f} | {float(norms.median()):,.1f} / "
              f"{float(norms.max()):,.1f} | {share:.3f} |")


if __name__ == "__main__":
    main()
