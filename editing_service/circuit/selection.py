"""Selecting the circuit: the features with the largest indirect effects, across every site."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from editing_service.circuit.scores import NodeScores

NO_RULE = "Choose the circuit by top_k, by threshold, or both; got neither."
BAD_TOP_K = "top_k must be at least 1, got {top_k}."


@dataclass(frozen=True)
class CircuitFeature:
    """One feature of the circuit, with its signed score and its rank by |score| (0 = strongest)."""

    site: str
    feature: int
    score: float
    rank: int

    @property
    def id(self) -> str:
        return f"{self.site}/{self.feature}"


def select_circuit(
    scores: Mapping[str, NodeScores],
    *,
    top_k: int | None = 200,
    threshold: float | None = None,
    per_site: bool = False,
) -> list[CircuitFeature]:
    """Features ranked by |score| over all sites: the `top_k` strongest, those with |score| >= threshold,
    or both rules at once (error nodes are never part of the circuit: they cannot be flagged).

    With `per_site`, `top_k` applies within each site: effects at early sites are spread over many
    features and would otherwise be crowded out by the last sites, which the head reads directly.
    """
    if top_k is None and threshold is None:
        raise ValueError(NO_RULE)
    if top_k is not None and top_k < 1:
        raise ValueError(BAD_TOP_K.format(top_k=top_k))
    sites = list(scores)
    values = np.concatenate([np.asarray(scores[s].features, dtype=np.float64) for s in sites])
    owner = np.concatenate([np.full(len(scores[s].features), i) for i, s in enumerate(sites)])
    index = np.concatenate([np.arange(len(scores[s].features)) for s in sites])
    order = np.argsort(-np.abs(values), kind="stable")
    if threshold is not None:
        order = order[np.abs(values[order]) >= threshold]
    if top_k is not None and per_site:
        kept = np.concatenate([order[owner[order] == i][:top_k] for i in range(len(sites))])
        order = kept[np.argsort(-np.abs(values[kept]), kind="stable")]
    elif top_k is not None:
        order = order[:top_k]
    return [
        CircuitFeature(site=sites[owner[j]], feature=int(index[j]), score=float(values[j]), rank=r)
        for r, j in enumerate(order)
    ]
