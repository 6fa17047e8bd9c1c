"""Length-sorted batching of texts: tokenise once, pad each batch only to its own longest text; and
clipping texts to what truncation keeps before they are tokenised."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from transformers import BatchEncoding, PreTrainedTokenizerBase

# No tokenizer's token covers more characters than this, spaces before it included, in any text but a
# contrived one: a text clipped to max_length * MAX_CHARS_PER_TOKEN characters keeps the max_length
# tokens that truncation would keep (English averages 4 to 5 characters a token).
MAX_CHARS_PER_TOKEN = 32


def clip_texts(texts: list[str], max_length: int) -> list[str]:
    """Texts cut to `max_length * MAX_CHARS_PER_TOKEN` characters, so tokenising costs what truncation
    keeps instead of the whole text (a 58 KB text would otherwise be tokenised whole, then cut)."""
    limit = max_length * MAX_CHARS_PER_TOKEN
    return [t if len(t) <= limit else t[:limit] for t in texts]


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
