"""Filling an activation cache with one forward pass over a list of texts."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from tqdm.auto import tqdm

from editing_service.activations.cache import (
    ActivationCache,
    CacheDtype,
    site_path,
    to_storage,
)
from editing_service.model.batching import length_sorted_batches, token_lengths
from editing_service.model.classifier import TextClassifier
from editing_service.model.hooks import capture
from editing_service.model.sites import Site

logger = logging.getLogger(__name__)

NO_TEXTS = "Cannot cache activations of 0 texts."
LABELS_LENGTH = "labels has {n_labels} entries but there are {n_texts} texts."
BAD_TOKENS_PER_TEXT = "tokens_per_text must be at least 1 (or None for every token), got {value}."


def sample_tokens(mask: torch.Tensor, rows: np.ndarray, k: int, seed: int) -> torch.Tensor:
    """`mask` [B, T] keeping at most `k` of each row's tokens, drawn without replacement by a generator
    seeded with (seed, the text's index), so a text's sample does not depend on its batch."""
    sampled = torch.zeros_like(mask)
    for i, row in enumerate(rows):
        positions = mask[i].nonzero(as_tuple=True)[0]
        if len(positions) > k:
            keep = np.random.default_rng([seed, int(row)]).choice(len(positions), size=k, replace=False)
            positions = positions[torch.from_numpy(np.sort(keep)).to(positions.device)]
        sampled[i, positions] = True
    return sampled


@torch.inference_mode()
def collect_activations(
    classifier: TextClassifier,
    texts: list[str],
    *,
    sites: list[Site],
    out_dir: str | Path,
    labels: np.ndarray | None = None,
    dtype: CacheDtype = "float32",
    batch_size: int = 32,
    progress: bool = True,
    on_progress: Callable[[float], None] | None = None,
    info: dict[str, object] | None = None,
    tokens_per_text: int | None = None,
    seed: int = 0,
) -> ActivationCache:
    """Run the classifier once over `texts` and write the cache to `out_dir` (replaced if present).

    Records every site's output at the tokens of `classifier.token_mask` (with `tokens_per_text`, a seeded
    random sample of at most that many tokens of each text, in position order) and the features the head reads.
    """
    if not texts:
        raise ValueError(NO_TEXTS)
    if labels is not None and len(labels) != len(texts):
        raise ValueError(LABELS_LENGTH.format(n_labels=len(labels), n_texts=len(texts)))
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    (out / "sites").mkdir(parents=True)

    if tokens_per_text is not None and tokens_per_text < 1:
        raise ValueError(BAD_TOKENS_PER_TEXT.format(value=tokens_per_text))
    lengths = token_lengths(classifier.tokenizer, texts, classifier.max_length)
    counts = classifier.token_counts(lengths)
    stored = counts if tokens_per_text is None else np.minimum(counts, tokens_per_text)
    n_tokens = int(stored.sum())
    # Rows are laid out in the batch order (sorted by length), each example contiguous.
    order = np.argsort(lengths, kind="stable")
    example_start = np.zeros(len(texts), dtype=np.int64)
    example_start[order] = np.concatenate([[0], np.cumsum(stored[order])[:-1]])
    example_index = np.empty(n_tokens, dtype=np.int32)
    position = np.empty(n_tokens, dtype=np.int32)
    token_id = np.empty(n_tokens, dtype=np.int32)

    d_model = int(classifier.backbone.config.hidden_size)
    # Rows arrive in file order, so each site's file is written front to back with plain writes: a writable
    # memory map would keep every written page resident until the end.
    files: dict[str, BinaryIO] = {}
    widths: dict[str, int] = {}
    head_features: np.ndarray | None = None

    cursor = 0
    bar = tqdm(total=len(texts), desc="activations", unit="text",
               disable=not progress or not logger.isEnabledFor(logging.INFO))
    with ExitStack() as stack:
        for rows, batch in length_sorted_batches(
            classifier.tokenizer, texts, batch_size=batch_size, max_length=classifier.max_length, lengths=lengths
        ):
            batch = batch.to(classifier.device)
            mask = classifier.token_mask(batch["attention_mask"])
            if tokens_per_text is not None:
                mask = sample_tokens(mask, rows, tokens_per_text, seed)
            with capture(classifier.backbone, sites) as store:
                features, _ = classifier.head_features(batch["input_ids"], batch["attention_mask"])
            if head_features is None:
                head_features = np.zeros((len(texts), features.shape[-1]), dtype=np.float32)
            head_features[rows] = features.float().cpu().numpy()

            n = int(mask.sum())
            ex_local, pos = mask.nonzero(as_tuple=True)  # row-major: each example's tokens in order
            example_index[cursor : cursor + n] = rows[ex_local.cpu().numpy()]
            position[cursor : cursor + n] = pos.cpu().numpy()
            token_id[cursor : cursor + n] = batch["input_ids"][mask].cpu().numpy()
            for site in sites:
                hidden = store[site.name][mask]  # [n, d]
                if site.name not in files:
                    files[site.name] = stack.enter_context(site_path(out, site.name).open("wb"))
                    widths[site.name] = int(hidden.shape[-1])
                files[site.name].write(to_storage(hidden, dtype).tobytes())
            cursor += n
            bar.update(len(rows))
            if on_progress is not None:
                on_progress(bar.n / len(texts))
    bar.close()
    assert cursor == n_tokens, (cursor, n_tokens)

    np.savez(
        out / "tokens.npz", example_index=example_index, position=position, token_id=token_id,
        example_start=example_start, example_length=stored.astype(np.int32),
    )
    assert head_features is not None
    np.save(out / "head_features.npy", head_features)
    if labels is not None:
        np.save(out / "labels.npy", np.asarray(labels, dtype=np.int64))
    meta = {
        "sites": widths,
        "dtype": dtype,
        "n_examples": len(texts),
        "n_tokens": n_tokens,
        "tokens_per_text": tokens_per_text,
        "d_model": d_model,
        "model": classifier.source.name_or_path,
        "model_sha256": classifier.source.weights_sha256,
        **(info or {}),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2))  # written last: marks the cache complete
    logger.info("Cached %d tokens of %d texts at %d sites in %s", n_tokens, len(texts), len(sites), out)
    return ActivationCache.open(out)
