"""Edges by batched VJPs agree with exact two-step patching on a tiny model, at every site pair of the
product's default sites (every block output)."""

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
    blocks = {site: sae for site, sae in saes.items() if site.kind == "block"}
    texts, labels = texts[::6], labels[::6]  # 16 examples from every (class, group) cell
    circuit = {site.name: list(range(0, 48, 4)) for site in blocks}
    approx = compute_edges(clf, blocks, texts, labels, circuit, batch_size=8, chunk=5)
    exact = exact_edges(clf, blocks, texts, labels, circuit)
    assert set(approx) <= set(exact)
    by_pair: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for key, value in exact.items():
        by_pair[_pair(*key)].append((approx.get(key, 0.0), value))
    checked = []
    for pair, values in by_pair.items():
        a, e = np.array(values).T
        if np.abs(e).max() < 1e-6:  # no path that crosses no other site: both are zero
            assert np.abs(a).max() < 1e-6, pair
            continue
        live = np.abs(e) > 1e-9
        assert live.sum() >= 8, pair
        corr = np.corrcoef(a[live], e[live])[0, 1]
        assert corr >= 0.9, (pair, corr)
        checked.append(pair)
    assert sorted(checked) == [("blocks.0.out", "blocks.1.out"), ("blocks.1.out", METRIC_ID)]


def test_edges_into_the_metric_from_the_last_site_are_the_node_scores(tiny_circuit) -> None:
    from editing_service.circuit import attribution_patching

    clf, saes, texts, labels, _cache = tiny_circuit
    last = {site: sae for site, sae in saes.items() if site.name == "blocks.1.out"}
    texts, labels = texts[::6], labels[::6]
    edges = compute_edges(clf, last, texts, labels, {"blocks.1.out": [1, 5, 9]}, batch_size=8, chunk=8)
    scores = attribution_patching(clf, last, texts, labels, batch_size=8)["blocks.1.out"]
    for i in (1, 5, 9):
        assert np.isclose(edges[(f"blocks.1.out/{i}", METRIC_ID)], scores.features[i], rtol=1e-4, atol=1e-6)
    assert np.isclose(edges[("blocks.1.out/error", METRIC_ID)], scores.error, rtol=1e-4, atol=1e-6)


def test_the_analytic_sae_products_give_the_autograd_edges(tiny_circuit) -> None:
    """The closed-form SAE ends (a W_enc column per downstream feature, a W_dec row per upstream one) and
    the total gradients carried back site by site give the edges of autograd through both SAEs."""
    from reference_edges import reference_edges

    clf, saes, texts, labels, _cache = tiny_circuit
    texts, labels = texts[::4], labels[::4]
    circuit = {site.name: list(range(0, 48, 3)) for site in saes}
    for sites in ({s: a for s, a in saes.items() if s.kind == "block"}, saes):  # adjacent blocks; block and mlp
        fast = compute_edges(clf, sites, texts, labels, circuit, batch_size=8, chunk=5)
        slow = reference_edges(clf, sites, texts, labels, circuit, batch_size=8, chunk=5)
        assert set(fast) == set(slow)
        keys = sorted(slow)
        a, b = np.array([fast[k] for k in keys]), np.array([slow[k] for k in keys])
        assert np.abs(b).max() > 1e-3
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
