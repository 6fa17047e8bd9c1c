"""Attribution patching and integrated gradients agree with exact ablation on a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factories import make_bios_frame, make_model_folder
from pydantic import ValidationError

from editing_service.activations import collect_activations
from editing_service.circuit import (
    attribution_patching,
    exact_ablation,
    integrated_gradients,
    select_circuit,
)
from editing_service.circuit.scores import ATTRIBUTION_SCHEMA_VERSION, AttributionDocument, NodeScores
from editing_service.circuit.selection import BAD_TOP_K, NO_RULE
from editing_service.model import load_classifier
from editing_service.sae import SAETrainer


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("attr")
    frame = make_bios_frame(8)
    texts = frame.text.tolist()
    labels = (frame.occupation == "surgeon").to_numpy().astype(np.int64)
    clf = load_classifier(make_model_folder(root, "bert"), classes=["nurse", "surgeon"])
    sites = clf.sites(("block", "mlp"))
    cache = collect_activations(clf, texts, sites=sites, out_dir=root / "cache", labels=labels, progress=False)
    clf.fit_head(cache.head_features, labels)
    saes = {}
    for site in sites:
        trainer = SAETrainer(architecture="topk", d_sae=48, k=6, n_epochs=30, batch_size=256, seed=0)
        saes[site] = trainer.fit(cache.site(site.name)).sae_
    return clf, saes, texts[:24], labels[:24]


def test_attrib_or_ig_correlates_with_exact_ablation_at_every_site(setup) -> None:
    clf, saes, texts, labels = setup
    attrib = attribution_patching(clf, saes, texts, labels, batch_size=8)
    ig = integrated_gradients(clf, saes, texts, labels, steps=10, batch_size=8)
    exact = exact_ablation(clf, saes, texts, labels)
    for site in saes:
        reference = np.array([exact[site.name]["features"][i] for i in range(48)])
        live = np.abs(reference) > 1e-9
        assert live.sum() >= 10, site.name
        best = max(np.corrcoef(attrib[site.name].features[live], reference[live])[0, 1],
                   np.corrcoef(ig[site.name].features[live], reference[live])[0, 1])
        assert best >= 0.95, (site.name, best)
        # the error node's effect has the right size too
        assert abs(ig[site.name].error - exact[site.name]["error"]) <= 0.2 * abs(exact[site.name]["error"]) + 1e-3


def test_attribution_does_not_touch_parameter_gradients(setup) -> None:
    clf, saes, texts, labels = setup
    attribution_patching(clf, saes, texts[:4], labels[:4], batch_size=4)
    assert all(p.grad is None for p in clf.parameters())


def test_select_circuit_ranks_by_absolute_score_over_and_within_sites() -> None:
    scores = {
        "a": NodeScores("a", np.array([0.1, -0.9, 0.05]), 0.0, "attrib", 4),
        "b": NodeScores("b", np.array([0.5, -0.01, 0.3]), 0.0, "attrib", 4),
    }
    assert [c.id for c in select_circuit(scores, top_k=3)] == ["a/1", "b/0", "b/2"]
    assert [c.id for c in select_circuit(scores, top_k=1, per_site=True)] == ["a/1", "b/0"]
    assert [c.id for c in select_circuit(scores, top_k=None, threshold=0.2)] == ["a/1", "b/0", "b/2"]
    with pytest.raises(ValueError, match=NO_RULE):
        select_circuit(scores, top_k=None)
    with pytest.raises(ValueError) as err:
        select_circuit(scores, top_k=0)
    assert str(err.value) == BAD_TOP_K.format(top_k=0)


def test_scores_round_trip_through_the_attribution_document(tmp_path) -> None:
    scores = {"a": NodeScores("a", np.array([0.25, -1.5, float("nan")]), 0.125, "ig", 7)}
    path = tmp_path / "attribution.json"
    AttributionDocument.write(path, scores)
    assert json.loads(path.read_text().replace("NaN", "null"))["schema_version"] == ATTRIBUTION_SCHEMA_VERSION
    again = AttributionDocument.read(path)["a"]
    assert again.site == "a" and again.error == 0.125 and again.n_examples == 7 and again.method == "ig"
    np.testing.assert_array_equal(again.features, scores["a"].features)  # NaN included
    assert again.features.dtype == np.float64


def test_an_attribution_file_written_before_the_schema_version_loads_as_version_1(tmp_path) -> None:
    path = tmp_path / "attribution.json"
    path.write_text(json.dumps({"blocks.0.out": {"site": "blocks.0.out", "method": "attrib", "n_examples": 4,
                                                 "error": -0.5, "features": [1.0, 2.0]}}))
    document = AttributionDocument.model_validate_json(path.read_text())
    assert document.schema_version == 1
    np.testing.assert_array_equal(document.sites["blocks.0.out"].features, [1.0, 2.0])


def test_an_attribution_file_of_an_unknown_schema_version_is_refused(tmp_path) -> None:
    path = tmp_path / "attribution.json"
    path.write_text(json.dumps({"schema_version": 2, "sites": {}}))
    with pytest.raises(ValidationError, match="schema_version"):
        AttributionDocument.read(path)
