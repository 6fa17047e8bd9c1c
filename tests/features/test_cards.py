"""Feature cards: fields, JSON, top examples, neighbours and the `pushes` rules, on hand-built data and on a
tiny real model with a tiny SAE."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from factories import make_bios_frame, make_model_folder
from feature_factories import SITE, TOKENIZER, IdentitySAE, hand_cache, make_split

from editing_service.activations import collect_activations
from editing_service.circuit import NodeScores
from editing_service.features import (
    FeatureCard,
    Suggestion,
    attach_suggestions,
    build_feature_cards,
    decoder_neighbours,
)
from editing_service.model import load_classifier
from editing_service.sae import SAEConfig, TopKSAE

W_DEC = torch.tensor([
    [1.0, 0.0, 0.0],
    [0.8, 0.6, 0.0],
    [0.0, 1.0, 0.0],
    [-1.0, 0.0, 0.0],
    [1.2, 0.0, 1.6],  # not unit norm: cosine with row 0 is 0.6
])


def _z(**acts: float) -> list[float]:
    """Activations of the five features, zero unless named f0..f4."""
    return [acts.get(f"f{j}", 0.0) for j in range(5)]


LONG = [("the", _z()) for _ in range(7)] + [("she", _z(f0=1.0))] + [("the", _z()), ("a", _z())]
EXAMPLES = [
    LONG,  # max 1.0 at position 7 of 10
    [("she", _z(f0=3.0, f1=1.0)), ("nurse", _z(f0=0.5))],  # max 3.0
    [("he", _z(f0=2.0)), ("surgeon", _z(f1=2.0))],  # max 2.0
    [("he", _z()), ("surgeon", _z(f1=1.0))],  # f0 silent
]
LABELS, GENDERS = [0, 0, 1, 1], ["F", "F", "M", "M"]


def _cards(**kwargs: object) -> list[FeatureCard]:
    cache = hand_cache(EXAMPLES)
    split = make_split(["x"] * 4, LABELS, {"gender": GENDERS})
    return build_feature_cards(
        features=kwargs.pop("features", [(SITE, 0), (SITE, 1)]), saes={SITE: IdentitySAE(5, W_DEC)}, cache=cache,
        split=split, tokenizer=TOKENIZER, **kwargs,
    )


def test_neighbours_are_the_largest_decoder_cosines() -> None:
    found = decoder_neighbours(W_DEC, [0, 2], k=3)
    assert [j for j, _ in found[0]] == [1, 4, 2]
    np.testing.assert_allclose([c for _, c in found[0]], [0.8, 0.6, 0.0], atol=1e-6)
    assert [j for j, _ in found[1]] == [1, 0, 3]  # 0.6, then ties at 0 by feature id
    card = _cards(n_neighbours=2)[0]
    assert card.neighbours == [
        {"feature": 1, "id": f"{SITE}/1", "cosine": 0.8, "in_cards": True},
        {"feature": 4, "id": f"{SITE}/4", "cosine": 0.6, "in_cards": False},
    ]


def test_top_examples_are_sorted_by_max_activation_with_a_window() -> None:
    card = next(c for c in _cards(window=2) if c.feature == 0)
    assert [e["example"] for e in card.top_examples] == [1, 2, 0]  # example 3 never fires
    assert [e["max_value"] for e in card.top_examples] == [3.0, 2.0, 1.0]
    long = card.top_examples[2]
    assert long["start"] == 5 and long["n_tokens"] == 10 and long["max_value_token_index"] == 2
    assert long["tokens"] == ["the", "the", "she", "the", "a"] and long["values"] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert long["label"] == "nurse" and long["groups"] == {"gender": "F"}
    assert card.top_examples[0]["tokens"] == ["she", "nurse"] and card.top_examples[0]["values"] == [3.0, 0.5]


def test_card_summaries_on_a_hand_built_split() -> None:
    card = next(c for c in _cards() if c.feature == 0)
    assert card.id == f"{SITE}/0" and card.frac_nonzero == pytest.approx(4 / 16) and card.max_activation == 3.0
    assert card.top_tokens[0] == {"token": "she", "share": round(4.0 / 6.5, 4), "count": 2}
    assert card.label == "she / he / nurse"
    assert sum(card.activation_histogram["counts"]) == 4 and len(card.activation_histogram["bin_edges"]) == 21
    assert card.by_class["nurse"] == {"mean": 2.0, "frac_active": 1.0, "n": 2}
    gender = card.by_group["gender"]
    assert gender["mean"] == {"F": 2.0, "M": 1.0} and gender["auroc_by_class"] == {"nurse": None, "surgeon": None}
    assert gender["auroc"] is None  # every class has one group: no within-class AUROC, and no error


def test_pushes_follows_class_scores_then_class_effects_then_the_score_sign() -> None:
    scores = {SITE: NodeScores(site=SITE, features=np.array([-0.5, 0.2, 0, 0, 0]), error=0.0, method="attrib",
                               n_examples=4)}
    by_sign = {c.feature: c for c in _cards(scores=scores)}
    assert (by_sign[0].pushes, by_sign[0].pushes_basis) == ("nurse", "score_sign_and_activation")
    assert by_sign[1].pushes == "nurse"  # positive score: the class it is *less* active on
    assert by_sign[0].rank == 1 and by_sign[1].rank == 2 and by_sign[0].score == -0.5
    effects = {(SITE, 0): [0.1, 0.9], (SITE, 1): [0.3, 0.3]}
    by_effect = {c.feature: c for c in _cards(scores=scores, class_effects=effects)}
    assert (by_effect[0].pushes, by_effect[0].pushes_basis) == ("surgeon", "class_effects")
    assert by_effect[0].class_effects == {"nurse": 0.1, "surgeon": 0.9} and by_effect[1].pushes is None
    per_class = {name: {SITE: NodeScores(site=SITE, features=np.array(v), error=0.0, method="attrib", n_examples=2)}
                 for name, v in {"nurse": [0.1, -0.2, 0, 0, 0], "surgeon": [-0.3, 0.4, 0, 0, 0]}.items()}
    by_class = {c.feature: c for c in _cards(scores=scores, class_effects=effects, class_scores=per_class)}
    assert (by_class[0].pushes, by_class[0].pushes_basis) == ("surgeon", "class_scores")
    assert by_class[1].pushes == "nurse" and by_class[1].score_by_class == {"nurse": -0.2, "surgeon": 0.4}
    with pytest.raises(ValueError, match=r"class_effects of blocks.0.out/0 has 3 entries; the split has 2"):
        _cards(class_effects={(SITE, 0): [1.0, 2.0, 3.0]})


def test_cards_on_a_tiny_model_are_complete_and_json_serialisable(tmp_path) -> None:
    frame = make_bios_frame(n_per_cell=3)
    frame = frame[frame["split"] == "validate"].reset_index(drop=True)
    classes = ["nurse", "surgeon"]
    labels = frame["occupation"].map(classes.index).to_numpy()
    split = make_split(frame["text"].tolist(), labels.tolist(), {"gender": frame["gender"].tolist()})
    clf = load_classifier(make_model_folder(tmp_path, "bert", sequence_classification=True), classes=classes)
    sites = clf.sites()
    cache = collect_activations(clf, split.texts, sites=sites, out_dir=tmp_path / "cache", labels=labels,
                                progress=False)
    gen = torch.Generator().manual_seed(0)
    saes = {s.name: TopKSAE(SAEConfig(architecture="topk", d_in=32, d_sae=16, k=4), generator=gen) for s in sites}
    rng = np.random.default_rng(0)
    scores = {s.name: NodeScores(site=s.name, features=rng.standard_normal(16), error=0.0, method="attrib",
                                 n_examples=len(split)) for s in sites}
    wanted = [(sites[0].name, 3), (sites[1].name, 5), (sites[0].name, 9)]
    cards = build_feature_cards(features=wanted, saes=saes, cache=cache, split=split, tokenizer=clf.tokenizer,
                                scores=scores, class_effects={wanted[0]: np.array([0.5, -0.5])})
    assert sorted((c.site, c.feature) for c in cards) == sorted(wanted)
    assert [c.rank for c in cards] == [1, 2, 3]
    assert [abs(c.score) for c in cards] == sorted((abs(c.score) for c in cards), reverse=True)
    attach_suggestions(cards, [Suggestion(site=wanted[0][0], feature=3, kind="lexicon", score=0.9,
                                          evidence={}, reason="test")])
    for card in cards:
        data = json.loads(json.dumps(card.to_dict()))
        for key in ("site", "feature", "id", "score", "rank", "pushes", "label", "frac_nonzero", "max_activation",
                    "activation_histogram", "top_examples", "top_tokens", "by_class", "by_group",
                    "class_effects", "neighbours", "flag", "suggestions"):
            assert key in data
        assert FeatureCard.from_dict(data) == card
        assert len(card.neighbours) == 5 and len(card.top_examples) <= 8
        maxima = [e["max_value"] for e in card.top_examples]
        assert maxima == sorted(maxima, reverse=True)
        assert set(card.by_group["gender"]["auroc_by_class"]) == set(classes)
    first = next(c for c in cards if (c.site, c.feature) == wanted[0])
    assert first.pushes == "nurse" and first.suggestions[0]["id"] == f"{wanted[0][0]}/3"


def test_rank_auroc_equals_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    from editing_service.features.groups import auroc

    rng = np.random.default_rng(0)
    for _ in range(20):
        values = rng.integers(0, 4, size=50).astype(float)  # many ties, many zeros as in sparse features
        positive = rng.random(50) < 0.3
        assert auroc(positive, values) == pytest.approx(roc_auc_score(positive, values), abs=1e-12)
