"""The head lens: the logit lens adapted to a classifier. For every site, how readable the label and the
protected attribute are from its mean-pooled activation (a fresh linear probe, cross-validated), and
how accurate the original head is when applied to it directly (where the shapes allow)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from editing_service.activations import ActivationCache
from editing_service.circuit.graph import HeadLens, HeadLensSite

FOLDS = 3


def pooled(cache: ActivationCache, site: str) -> np.ndarray:
    """[n_examples, d]: each example's mean over its cached (non-pad) tokens, as the probe head pools.

    An example's tokens are one contiguous run of rows, but the runs are stored in the collector's order
    (by length), not by example index: each run is summed where it lies and put at its example's row."""
    x = cache.read(site)
    sums = np.zeros((cache.n_examples, x.shape[1]))
    if len(x):
        starts = np.concatenate([[0], np.flatnonzero(np.diff(cache.example_index)) + 1])
        sums[cache.example_index[starts]] = np.add.reduceat(x.astype(np.float64), starts, axis=0)
    return (sums / np.maximum(cache.example_length, 1)[:, None]).astype(np.float32)


def probe_accuracy(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float | None:
    """Cross-validated accuracy of a standardised logistic-regression probe (None: too few per class)."""
    _, counts = np.unique(y, return_counts=True)
    if len(counts) < 2 or counts.min() < FOLDS:
        return None
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    return float(cross_val_score(probe, x, y, cv=FOLDS).mean())


@torch.no_grad()
def head_accuracy(head: torch.nn.Linear | None, x: np.ndarray, y: np.ndarray) -> float | None:
    if head is None or head.in_features != x.shape[1]:
        return None
    weight = head.weight.detach().cpu().double().numpy()
    bias = 0.0 if head.bias is None else head.bias.detach().cpu().double().numpy()  # decoder heads have none
    return float(((x @ weight.T + bias).argmax(1) == y).mean())


def head_lens(
    cache: ActivationCache, sites: list[str], labels: np.ndarray, *, split: str,
    head: torch.nn.Linear | None = None, groups: Mapping[str, np.ndarray] | None = None,
) -> HeadLens:
    """The head lens of every site on one split (its cache, labels and protected groups)."""
    attribute, group_of = next(iter((groups or {}).items()), (None, None))
    rows = []
    for site in sites:
        x = pooled(cache, site)
        probe = probe_accuracy(x, labels)
        rows.append(HeadLensSite(
            site=site, probe_accuracy=probe,
            head_accuracy=head_accuracy(head, x, labels),
            attribute_accuracy=probe_accuracy(x, np.asarray(group_of)) if group_of is not None else None,
        ))
    return HeadLens(split=split, attribute=attribute, sites=rows)
