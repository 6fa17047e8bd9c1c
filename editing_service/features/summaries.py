"""Per-feature summaries of token activations: histogram, top tokens, automatic label, top examples.

Everything reads one feature's sparse record (`FeatureActivations.token_activations`) and the cache's
`TokenVocab`, so a summary costs O(nonzero activations + distinct tokens), never O(n_tokens * d_sae).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from editing_service.features.activations import FeatureActivations
from editing_service.features.tokens import TokenVocab, strip_markers

DIGITS = 3  # activations in cards are rounded to this many decimals
LABEL_MIN_SHARE = 0.05  # a token names the feature only if it carries at least this share of the mass


def activation_histogram(values: np.ndarray, *, bins: int = 20) -> dict[str, list[float] | list[int]]:
    """Histogram of nonzero activations: `bin_edges` [bins + 1] from 0 to the max, `counts` [bins]."""
    values = values[values != 0]
    if values.size == 0:
        return {"bin_edges": [], "counts": []}
    low, high = min(0.0, float(values.min())), float(values.max())
    counts, edges = np.histogram(values, bins=bins, range=(low, high if high > low else low + 1.0))
    return {"bin_edges": [round(float(e), DIGITS + 1) for e in edges], "counts": counts.astype(int).tolist()}


def token_mass(rows: np.ndarray, values: np.ndarray, vocab: TokenVocab) -> np.ndarray:
    """[V] activation mass (sum of activations) per distinct token."""
    return np.bincount(vocab.inverse[rows], weights=values.astype(np.float64), minlength=len(vocab.strings))


def top_tokens(
    rows: np.ndarray, values: np.ndarray, vocab: TokenVocab, *, k: int = 10
) -> list[dict[str, Any]]:
    """The `k` tokens carrying the most activation mass: token, share of the mass, active count."""
    mass = token_mass(rows, values, vocab)
    total = float(mass.sum())
    if total <= 0:
        return []
    counts = np.bincount(vocab.inverse[rows], minlength=len(vocab.strings))
    order = np.lexsort((np.arange(mass.size), -mass))[:k]
    return [
        {"token": vocab.strings[i], "share": round(float(mass[i]) / total, 4), "count": int(counts[i])}
        for i in order if mass[i] > 0
    ]


def auto_label(tokens: Sequence[Mapping[str, Any]], *, max_words: int = 3) -> str:
    """A short name from the top tokens, e.g. "she / her / hers"; "(dead)" when nothing fires."""
    if not tokens:
        return "(dead)"
    words: list[str] = []
    for item in tokens:
        word = strip_markers(str(item["token"]))
        if item["share"] >= LABEL_MIN_SHARE and word and word.lower() not in {w.lower() for w in words}:
            words.append(word)
        if len(words) == max_words:
            break
    return " / ".join(words) if words else "(diffuse)"


def top_examples(
    record: FeatureActivations,
    feature: int,
    *,
    vocab: TokenVocab,
    example_start: np.ndarray,
    example_info: Sequence[Mapping[str, Any]] | None = None,
    k: int = 8,
    window: int = 32,
) -> list[dict[str, Any]]:
    """The `k` examples with the largest max activation (largest first, ties by index), each with its
    tokens and per-token activations in a window of `window` tokens either side of the max token."""
    example_max = record.example_max[:, record.column(feature)]
    active = np.flatnonzero(example_max > 0)
    chosen = active[np.lexsort((active, -example_max[active]))][:k]
    rows, values = record.token_activations(feature)
    out = []
    for i in chosen.tolist():
        start, length = int(example_start[i]), int(record.example_length[i])
        lo, hi = np.searchsorted(rows, [start, start + length])
        acts = np.zeros(length, dtype=np.float32)
        acts[rows[lo:hi] - start] = values[lo:hi]
        peak = int(np.argmax(acts))
        first, last = max(0, peak - window), min(length, peak + window + 1)
        item: dict[str, Any] = {
            "example": i,
            "max_value": round(float(acts[peak]), DIGITS),
            "max_value_token_index": peak - first,
            "start": first,
            "n_tokens": length,
            "tokens": list(vocab.tokens_of(slice(start + first, start + last))),
            "values": [round(float(v), DIGITS) for v in acts[first:last]],
        }
        if example_info is not None:
            item.update(example_info[i])
        out.append(item)
    return out

