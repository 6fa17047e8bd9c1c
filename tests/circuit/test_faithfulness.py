"""Faithfulness and completeness: 1 and 0 for the whole model, a hand computation where the answer is
known (a linear head reading the only ablated site), exact pruning's bookkeeping, and the schema."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from editing_service.circuit.ablation import ablation_values
from editing_service.circuit.faithfulness import NodeSetEvaluator, faithfulness_curve, set_faithfulness
from editing_service.circuit.graph import (
    CircuitEdge,
    CircuitGraph,
    CircuitNode,
    Thresholds,
    read_circuit,
    write_circuit,
)
from editing_service.circuit.pruning import exact_pruning, kl_from_model
from editing_service.sae import topk_to_jumprelu


def _all_nodes(saes) -> list[str]:
    return [f"{s.name}/{i}" for s, sae in saes.items() for i in range(sae.W_dec.shape[0])] + \
        [f"{s.name}/error" for s in saes]


def test_the_whole_model_is_faithful_and_complete(tiny_circuit) -> None:
    clf, saes, texts, labels, cache = tiny_circuit
    ev = NodeSetEvaluator(clf, saes, texts[:16], labels[:16], ablation_values(saes, "mean", cache))
    nodes = _all_nodes(saes)
    curve = faithfulness_curve(ev, nodes, sizes=[10])
    full = curve.points[-1]
    assert full.n_nodes == len(nodes)
    assert full.faithfulness == pytest.approx(1.0, abs=1e-6) and full.completeness == pytest.approx(0.0, abs=1e-6)
    assert curve.f_model != pytest.approx(curve.f_empty)
    assert curve.points[0].n_nodes == 10 and curve.smallest_faithful is not None
    assert ev.forward_passes == 4  # the model, the empty circuit, 10 nodes and their complement: the full
    # circuit is the model and its complement the empty circuit, not run again


def _hand_f(clf, sae, cache, rows: list[int], keep: np.ndarray, keep_error: bool, zero: bool) -> float:
    """Mean metric with the last site's nodes outside `keep` ablated, by hand from the cached activations:
    the probe head reads the mean over tokens, which is linear in the ablated activation."""
    with torch.no_grad():
        x_all = torch.tensor(cache.read(clf.probe_site.name))  # a copy: memmap rows are read-only
        f_all = sae.encode(x_all)
        e_all = x_all - sae.decode(f_all)
        mu_f = torch.zeros(f_all.shape[1]) if zero else f_all.double().mean(0).float()
        mu_e = torch.zeros(e_all.shape[1]) if zero else e_all.double().mean(0).float()
        w, b = clf.head.weight.double(), clf.head.bias.double()
        values = []
        for r in rows:
            sl = cache.example_rows(r)
            f, e = f_all[sl], e_all[sl]
            f_new = torch.where(torch.as_tensor(keep), f, mu_f)
            e_new = e if keep_error else mu_e.expand_as(e)
            pooled = (sae.decode(f_new) + e_new).double().mean(0)
            logits = w @ pooled + b
            diff = logits[1] - logits[0]
            values.append(float(diff if cache.labels[r] == 1 else -diff))
    return float(np.mean(values))


SMALL_SET, LARGE_SET = [3, 7, 11, 20, 30], [i for i in range(48) if i not in (3, 7, 11, 20, 30, 41)]


@pytest.mark.parametrize("ablation", ["mean", "zero"])
@pytest.mark.parametrize("architecture", ["topk", "jumprelu"])
@pytest.mark.parametrize("chosen", [SMALL_SET, LARGE_SET], ids=["few-columns", "most-columns"])
def test_faithfulness_equals_the_hand_computation(tiny_circuit, ablation: str, architecture: str,
                                                  chosen: list[int]) -> None:
    """Both ways of ablating a site: encoding only the columns the output reads (a set or complement under
    half the dictionary; a JumpReLU SAE encodes just those) and encoding every feature."""
    clf, saes, texts, labels, cache = tiny_circuit
    site = next(s for s in saes if s.name == clf.probe_site.name)
    sae = saes[site] if architecture == "topk" else topk_to_jumprelu(saes[site], cache.site(site.name), n_sample=512)
    only = {site: sae}
    rows = list(range(12))
    ev = NodeSetEvaluator(clf, only, [texts[r] for r in rows], labels[rows], ablation_values(only, ablation, cache))
    ids = [f"{site.name}/{i}" for i in chosen]
    keep = np.zeros(sae.W_dec.shape[0], dtype=bool)
    keep[chosen] = True
    f_model = _hand_f(clf, sae, cache, rows, np.ones_like(keep), True, ablation == "zero")
    f_empty = _hand_f(clf, sae, cache, rows, np.zeros_like(keep), False, ablation == "zero")
    f_c = _hand_f(clf, sae, cache, rows, keep, False, ablation == "zero")
    f_rest = _hand_f(clf, sae, cache, rows, ~keep, True, ablation == "zero")
    got = set_faithfulness(ev, "chosen", ids)
    assert ev.f_model() == pytest.approx(f_model, abs=1e-4)
    assert ev.f_empty() == pytest.approx(f_empty, abs=1e-4)
    assert got.f_set == pytest.approx(f_c, abs=1e-4) and got.f_complement == pytest.approx(f_rest, abs=1e-4)
    assert got.faithfulness == pytest.approx((f_c - f_empty) / (f_model - f_empty), abs=1e-3)
    assert got.completeness == pytest.approx((f_rest - f_empty) / (f_model - f_empty), abs=1e-3)


def test_exact_pruning_keeps_what_matters_and_reports_it(tiny_circuit) -> None:
    clf, saes, texts, labels, cache = tiny_circuit
    ev = NodeSetEvaluator(clf, saes, texts[:16], labels[:16], ablation_values(saes, "mean", cache))
    start = [f"{s.name}/{i}" for s in saes for i in range(4)] + [f"{s.name}/error" for s in saes]
    scores = {n: float(k + 1) for k, n in enumerate(start)}
    everything = exact_pruning(ev, start, scores, tau=1e9)
    assert everything.kept == [] and len(everything.visited) == len(start)
    assert everything.kl == pytest.approx(kl_from_model(ev.logits(None), ev.logits(ev.keep_masks([]))))
    careful = exact_pruning(ev, start, scores, tau=0.0)
    assert careful.kl <= kl_from_model(ev.logits(None), ev.logits(ev.keep_masks(start))) + 1e-12
    assert careful.auroc is None or 0.0 <= careful.auroc <= 1.0
    depth = [everything.visited.index(f"{s.name}/error") for s in saes]
    assert depth == sorted(depth, reverse=True)  # last site first
    with pytest.raises(ValueError, match="tau must be >= 0"):
        exact_pruning(ev, start, scores, tau=-1.0)


def test_schema_round_trips(tmp_path) -> None:
    graph = CircuitGraph(
        spec="s", model="m", sites=["a", "b"], method="attrib", n_examples=3, thresholds=Thresholds(max_nodes=2),
        nodes=[CircuitNode(id="metric", kind="metric"),
               CircuitNode(id="a/1", kind="feature", site="a", feature=1, score=-0.5, rank=0, label="she / her",
                           flag="spurious", suggestions=["lexicon"]),
               CircuitNode(id="b/error", kind="error", site="b", score=0.25, rank=1)],
        edges=[CircuitEdge(source="a/1", target="b/error", weight=-0.125),
               CircuitEdge(source="b/error", target="metric", weight=0.25)],
    )
    path = tmp_path / "circuit.json"
    write_circuit(graph, path)
    assert read_circuit(path) == graph
    path.write_text(path.read_text().replace('"schema_version": 1', '"schema_version": 99'))
    with pytest.raises(ValueError, match="not a valid circuit.json"):
        read_circuit(path)
