"""The examples attribution runs on: up to `n_examples`, stratified by class, seeded (one rule for the
feature scores and the neuron scores, so both rank by the same attribution)."""

from __future__ import annotations

import numpy as np


def stratified_sample(labels: np.ndarray, *, n_examples: int, seed: int) -> np.ndarray:
    """Sorted row indices: n_examples // n_classes per class (at least 1), drawn with `seed`."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = max(1, n_examples // len(classes))
    picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
    return np.sort(np.concatenate(picked))
