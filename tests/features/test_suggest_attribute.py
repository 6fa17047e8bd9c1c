"""Protected-attribute suggestions: separation of the groups within every class, by AUROC."""

from __future__ import annotations

import pytest
from feature_factories import SITE, IdentitySAE, hand_cache, make_split

from editing_service.features import (
    collect_feature_activations,
    suggest_by_protected_attribute,
    suggest_flags,
)

GENDER, CLASS_ONLY, ONE_CLASS = 0, 1, 2
# (class, gender, activations of the three features at the example's one token)
ROWS = [
    (0, "F", [2.0, 0.0, 3.0]), (0, "F", [1.5, 0.0, 2.5]), (0, "M", [0.0, 0.0, 0.0]), (0, "M", [0.2, 0.0, 0.1]),
    (1, "F", [1.8, 1.0, 0.5]), (1, "F", [1.2, 1.1, 0.0]), (1, "M", [0.1, 1.2, 0.3]), (1, "M", [0.0, 0.9, 0.0]),
]
CANDIDATES = [(SITE, GENDER), (SITE, CLASS_ONLY), (SITE, ONE_CLASS)]


def _run(rows=ROWS, **kwargs: object):
    cache = hand_cache([[("he", acts)] for _, _, acts in rows])
    acts = collect_feature_activations(saes={SITE: IdentitySAE(3)}, cache=cache, features=CANDIDATES)
    split = make_split(["he"] * len(rows), [c for c, _, _ in rows], {"gender": [g for _, g, _ in rows]},
                       name=kwargs.pop("name", "validate"))
    return suggest_by_protected_attribute(activations=acts, split=split, candidates=CANDIDATES, **kwargs)


def test_feature_separating_groups_in_every_class_is_suggested() -> None:
    found = {s.feature: s for s in _run()}
    assert set(found) == {GENDER}  # CLASS_ONLY tracks the label; ONE_CLASS separates in class 0 only
    s = found[GENDER]
    assert s.kind == "protected_attribute" and s.score == pytest.approx(0.5)
    assert s.evidence["positive_group"] == "M"
    assert s.evidence["auroc_by_class"] == {"nurse": 0.0, "surgeon": 0.0}
    assert s.evidence["attribute"] == "gender" and s.evidence["threshold"] == 0.2


def test_threshold_is_configurable() -> None:
    # ONE_CLASS: AUROC 0 in nurse, 0.375 in surgeon -> min |AUROC - 0.5| = 0.125
    assert {s.feature for s in _run(threshold=0.1)} == {GENDER, ONE_CLASS}
    with pytest.raises(ValueError, match=r"\|AUROC - 0.5\| in \[0, 0.5\], got 0.7"):
        _run(threshold=0.7)


def test_split_with_a_single_group_in_a_class_is_refused_with_a_clear_message() -> None:
    biased = [(c, "F" if c == 0 else "M", acts) for c, _, acts in ROWS]  # gender equals the label
    with pytest.raises(ValueError) as err:
        _run(biased, name="train")
    assert str(err.value) == (
        "Cannot separate the groups of protected attribute 'gender' within every class on split 'train': "
        "class 'nurse' has a single group ('F'). On a biased split the protected attribute equals the label; "
        "use a split that has every (class, group) cell, such as the validate split."
    )


def test_unknown_attribute_is_refused() -> None:
    with pytest.raises(ValueError, match="Split 'validate' has no protected attribute 'race'; it has: \\['gender'\\]"):
        _run(attributes=["race"])


def _suggest_all(**kwargs: object):
    cache = hand_cache([[("he", acts)] for _, _, acts in ROWS])
    split = make_split(["he"] * len(ROWS), [c for c, _, _ in ROWS], {"gender": [g for _, g, _ in ROWS]},
                       name="validate")
    return suggest_flags(saes={SITE: IdentitySAE(3)}, cache=cache, split=split, candidates=CANDIDATES,
                         lexicon=None, attribute_threshold=0.1, **kwargs)


def test_features_firing_on_more_tokens_than_the_cap_are_not_suggested() -> None:
    acts = collect_feature_activations(saes={SITE: IdentitySAE(3)}, cache=hand_cache(
        [[("he", acts)] for _, _, acts in ROWS]), features=CANDIDATES)[SITE]
    assert (acts.firing_rate(GENDER), acts.firing_rate(ONE_CLASS)) == (6 / 8, 5 / 8)
    assert {s.feature for s in _suggest_all()} == {GENDER, ONE_CLASS}
    assert {s.feature for s in _suggest_all(max_firing_rate=0.75)} == {GENDER, ONE_CLASS}
    assert {s.feature for s in _suggest_all(max_firing_rate=0.7)} == {ONE_CLASS}
    assert _suggest_all(max_firing_rate=0.6) == []
    with pytest.raises(ValueError, match=r"firing-rate cap is a share of tokens in \(0, 1\], got 0"):
        _suggest_all(max_firing_rate=0)
