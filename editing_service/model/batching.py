"""Length-sorted batching of texts: tokenise once, pad each batch only to its own longest text."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from transformers import BatchEncoding, PreTrainedTokenizerBase


def token_lengths(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> np.ndarray:
    """Number of tokens (special tokens included) of each text after truncation."""
    encoded = tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=True)
    return np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int64, count=len(texts))


def length_sorted_batches(
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    batch_size: int,
    max_length: int,
    lengths: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, BatchEncoding]]:
    """Yield (row indices, padded encoding) with rows grouped by length to minimise padding."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if lengths is None:
        lengths = token_lengths(tokenizer, texts, max_length)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = tokenizer(
            [texts[i] for i in rows],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        yield rows, batch
