"""Inputs of the baseline rows: deleting a concept's words from the text, and drawing random features.

Every SHIFT report carries these baselines (Marks et al. 2024 were criticised because deleting gendered
tokens from the input debiases Bias in Bios as well as SHIFT does); the pipeline runs them the same way
it runs SHIFT (same data, same head retraining).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

TOO_FEW_FEATURES = (
    "Site {site} has {available} live features outside the flagged ones; a random ablation of {n} cannot be drawn."
)


class TooFewFeatures(ValueError):
    """A site has fewer live unflagged features than it has flags: no random ablation of as many exists."""


def delete_words(texts: list[str], words: Iterable[str]) -> list[str]:
    """Each text with every whole-word occurrence of `words` removed (case-insensitive), spaces tidied."""
    vocabulary = sorted({w for w in words if w}, key=len, reverse=True)
    if not vocabulary:
        return list(texts)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in vocabulary) + r")\b", re.IGNORECASE)
    return [re.sub(r"\s{2,}", " ", pattern.sub("", text)).strip() for text in texts]


def random_features(
    flagged: Mapping[str, list[int]], alive: Mapping[str, np.ndarray], *, seed: int = 0
) -> dict[str, list[int]]:
    """As many random live features at each site as are flagged there, none of them flagged (sites drawn
    in sorted order, so the draw does not depend on the order of `flagged`)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {}
    for site in sorted(flagged):
        features = flagged[site]
        pool = np.setdiff1d(np.flatnonzero(alive[site]), np.asarray(features))
        if len(pool) < len(features):
            raise TooFewFeatures(TOO_FEW_FEATURES.format(site=site, available=len(pool), n=len(features)))
        out[site] = sorted(int(f) for f in rng.choice(pool, size=len(features), replace=False))
    return out
