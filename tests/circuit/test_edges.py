"""Edges by batched VJPs agree with exact two-step patching on a tiny model, at every site pair."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from editing_service.circuit.edges import compute_edges
from editing_service.circuit.exact_edges import exact_edges
from editing_service.circuit.graph import METRIC_ID


def _pair(source: str, target: str) -> tuple[str, str]:
    return source.rsplit("/", 1)[0], METRIC_ID if target == METRIC_ID else target.rsplit("/", 1)[0]


def test_edges_correlate_with_exact_patching_at_every_site_pair(tiny_circuit) -> None:
    clf, saes, texts, labels, _cache = tiny_circuit
    texts, labels = texts[:24], labels[:24]
    circuit = {site.name: list(range(0, 48, 4)) for site in saes}
    approx = compute_edges(clf, saes, texts, labels, circuit, batch_size=8, chunk=4)
    exact = exact_edges(clf, saes, texts, labels, circuit)
    by_pair: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for key, value in exact.items():
        by_pair[_pair(*key)].append((approx.get(key, 0.0), value))
    checked = 0
    for pair, values in by_pair.items():
        a, e = np.array(values).T
        if np.abs(e).max() < 1e-6:  # no path through no other site: both must be zero
            assert np.abs(a).max() < 1e-6, pair
            continue
        live = np.abs(e) > 1e-9
        assert live.sum() >= 8, pair
        corr = np.corrcoef(a[live], e[live])[0, 1]
        print(pair, round(float(corr), 4), int(live.sum()))
        assert corr >= 0.9, (pair, corr)
        checked += 1
    # block + MLP sites on 2 layers: mlp0->out0, out0->mlp1, out0->out1, mlp1->out1, out1->metric
    assert checked >= 5
