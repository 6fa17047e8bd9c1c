"""Lexicon suggestions: the share of activation mass on lexicon tokens, with its evidence."""

from __future__ import annotations

import pytest
from feature_factories import SITE, TOKENIZER, IdentitySAE, hand_cache

from editing_service.features import TokenVocab, collect_feature_activations, suggest_by_lexicon

PRONOUN, OCCUPATION, MIXED = 0, 1, 2
EXAMPLES = [
    [("she", [1.0, 0.0, 2.0]), ("works", [0.0, 0.0, 0.0]), ("as", [0.0, 0.0, 0.0]), ("nurse", [0.0, 1.0, 1.0]),
     ("her", [0.0, 0.0, 1.0])],
    [("he", [1.0, 0.0, 0.0]), ("surgeon", [0.0, 1.0, 0.0])],
    [("he", [0.5, 0.0, 0.0]), ("is", [0.0, 0.0, 0.0]), ("surgeon", [0.0, 2.0, 0.0])],
]
CANDIDATES = [(SITE, PRONOUN), (SITE, OCCUPATION), (SITE, MIXED)]


def _suggest(**kwargs: object):
    cache = hand_cache(EXAMPLES)
    acts = collect_feature_activations(saes={SITE: IdentitySAE(3)}, cache=cache, features=CANDIDATES)
    vocab = TokenVocab.from_cache(cache, TOKENIZER)
    kwargs.setdefault("candidates", CANDIDATES)
    return {s.feature: s for s in suggest_by_lexicon(activations=acts, vocab=vocab, **kwargs)}


def test_lexicon_share_is_exact_on_a_hand_built_case() -> None:
    found = _suggest(min_active_tokens=2)
    mixed = found[MIXED]  # she 2.0 + her 1.0 of 2.0 + 1.0 + 1.0 (nurse)
    assert mixed.score == 0.75 and mixed.evidence["lexicon_share"] == 0.75
    assert mixed.kind == "lexicon" and mixed.evidence["n_active_tokens"] == 3
    assert mixed.evidence["top_lexicon_tokens"] == [{"token": "she", "share": 0.5}, {"token": "her", "share": 0.25}]
    assert "75% of its activation mass is on 'gendered' lexicon tokens (she, her)" in mixed.reason


def test_pronoun_feature_is_suggested_and_occupation_feature_is_not() -> None:
    found = _suggest(min_active_tokens=2)
    assert found[PRONOUN].score == 1.0
    assert OCCUPATION not in found


def test_threshold_minimum_tokens_and_candidates_are_respected() -> None:
    assert set(_suggest(min_active_tokens=2, threshold=0.8)) == {PRONOUN}
    assert _suggest() == {}  # default min_active_tokens=10: three active tokens are too few
    assert set(_suggest(min_active_tokens=2, candidates=[(SITE, MIXED)])) == {MIXED}
    assert set(_suggest(min_active_tokens=2, lexicon=["nurse", "surgeon"])) == {OCCUPATION}


def test_bad_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match=r"share of activation mass in \(0, 1\], got 1.5"):
        _suggest(threshold=1.5)
