"""How closely the served edit follows the TopK SAE: precision and recall of the served firings.

    .venv/bin/python benchmarks/served_edit.py [--model PATH] [--train-texts 600] [--heldout-texts 300]
        [--epochs 4] [--json benchmarks/results/served_edit.json]

Caches every site (the embedding output and each block output) of the classifier on a slice of the
shipped spec's training texts, trains one TopK SAE per site (2048 features, k 32, the pipeline's
defaults but on fewer tokens and more epochs), then converts each to its served forms, fitted on the
training tokens: per-feature JumpReLU thresholds (`topk_to_jumprelu`, today's served form) and the
token-cut gate (`fit_topk_gate`). On held-out validate tokens it reports the precision and recall of the
served firings against the TopK codes for all live features and for the "gendered" ones (features with
>= 30% of their activation mass on the gendered lexicon's tokens, the lexicon rule's default), the ones
an edit flags. Target (issue 10): both >= 0.95 at every site.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from editing_service.data import load_role, load_spec
from editing_service.features import load_lexicon
from editing_service.features.tokens import TokenVocab
from editing_service.model import capture, load_classifier
from editing_service.model.batching import length_sorted_batches
from editing_service.sae import SAETrainer, topk_to_jumprelu
from editing_service.sae.convert import fit_topk_gate


@torch.inference_mode()
def site_tokens(classifier, texts: list[str], sites) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every site's non-pad token activations [n_tokens, d] and the token ids, in one pass."""
    out: dict[str, list[np.ndarray]] = {s.name: [] for s in sites}
    ids = []
    for _rows, batch in length_sorted_batches(classifier.tokenizer, texts, batch_size=32,
                                              max_length=classifier.max_length):
        mask = batch["attention_mask"].bool()
        with capture(classifier.backbone, sites) as store:
            classifier.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        for s in sites:
            out[s.name].append(store[s.name][mask].float().numpy())
        ids.append(batch["input_ids"][mask].numpy())
    return {k: np.concatenate(v) for k, v in out.items()}, np.concatenate(ids)


def agreement(fired: torch.Tensor, served: torch.Tensor) -> dict[str, float]:
    both = float((fired & served).sum())
    return {"precision": both / max(float(served.sum()), 1.0), "recall": both / max(float(fired.sum()), 1.0),
            "topk_firings": int(fired.sum())}


def gendered_features(codes: torch.Tensor, token_ids: np.ndarray, tokenizer, share: float = 0.3) -> np.ndarray:
    vocab = TokenVocab.from_token_ids(token_ids, tokenizer)
    in_lexicon = torch.from_numpy(vocab.mask(load_lexicon("gendered").words)[vocab.inverse])
    mass = codes.sum(0)
    lexicon_mass = codes[in_lexicon].sum(0)
    active = (codes > 0).sum(0) >= 10
    return torch.nonzero(active & (lexicon_mass >= share * mass.clamp_min(1e-12))).flatten().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--spec", default="biasbios_surgeon_nurse")
    parser.add_argument("--train-texts", type=int, default=600)
    parser.add_argument("--heldout-texts", type=int, default=300)
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/served_edit.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_spec(args.spec)
    classifier = load_classifier(args.model, classes=list(spec.labels))
    sites = classifier.sites(("embed", "block"))
    rng = np.random.default_rng(0)
    train, validate = load_role(spec, "train"), load_role(spec, "validate")
    train_texts = [train.texts[i] for i in rng.choice(len(train), args.train_texts, replace=False)]
    heldout_texts = [validate.texts[i] for i in rng.choice(len(validate), args.heldout_texts, replace=False)]
    started = time.perf_counter()
    train_acts, _train_ids = site_tokens(classifier, train_texts, sites)
    heldout_acts, heldout_ids = site_tokens(classifier, heldout_texts, sites)
    results = {"settings": vars(args) | {"json": str(args.json)}, "train_tokens": len(_train_ids),
               "heldout_tokens": len(heldout_ids), "sites": {}}
    for site in sites:
        sae = SAETrainer(d_sae=2048, k=32, n_epochs=args.epochs, seed=0).fit(train_acts[site.name]).sae_
        x = torch.from_numpy(heldout_acts[site.name])
        with torch.no_grad():
            codes = sae.encode(x)
            z = sae.pre_activations(x)
        fired = codes > 0
        jump = topk_to_jumprelu(sae, train_acts[site.name], n_sample=16384)
        gate = fit_topk_gate(sae, train_acts[site.name], n_sample=16384)
        with torch.no_grad():
            served = {"jumprelu": jump.encode(x) > 0, "gate": gate.fires(z, x)}
        gendered = gendered_features(codes, heldout_ids, classifier.tokenizer)
        live = torch.nonzero(fired.any(0)).flatten().numpy()
        entry = {"fvu": float(((sae(x) - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()),
                 "n_live": int(live.size), "n_gendered": int(gendered.size)}
        for form, mask in served.items():
            entry[form] = {"all": agreement(fired[:, live], mask[:, live])}
            if gendered.size:
                entry[form]["gendered"] = agreement(fired[:, gendered], mask[:, gendered])
        results["sites"][site.name] = entry
        print(site.name, json.dumps(entry), flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
