"""`--flags auto...`: flags from suggestions of one rule, or of both rules together (`auto`, `auto:all`)."""

from __future__ import annotations

import pytest

from editing_service.features import Suggestion
from editing_service.features.document import AttributionRecord, FeaturesDocument
from editing_service.features.flags import NO_SUGGESTIONS, flags_from_suggestions
from editing_service.pipeline.run import BAD_FLAGS, resolve_flags


def _suggestion(site: str, feature: int, kind: str) -> Suggestion:
    return Suggestion(site=site, feature=feature, kind=kind, score=0.4, evidence={}, reason=f"{kind} {feature}")


SUGGESTIONS = [
    _suggestion("embeddings.out", 3, "lexicon"),
    _suggestion("blocks.0.out", 7, "lexicon"),
    _suggestion("blocks.0.out", 7, "protected_attribute"),
    _suggestion("blocks.5.out", 11, "protected_attribute"),
]


def test_one_rule_flags_only_its_own_suggestions() -> None:
    flags = flags_from_suggestions(SUGGESTIONS, kind="lexicon")
    assert flags.spurious() == {"blocks.0.out": [7], "embeddings.out": [3]}
    assert {f.source for f in flags.flags} == {"lexicon"}


def test_both_rules_flag_the_union_and_say_so_in_the_policy() -> None:
    flags = flags_from_suggestions(SUGGESTIONS, kind=("lexicon", "protected_attribute"))
    assert flags.spurious() == {"blocks.0.out": [7], "blocks.5.out": [11], "embeddings.out": [3]}
    assert [(f.id, f.source) for f in flags.flags] == [
        ("embeddings.out/3", "lexicon"), ("blocks.0.out/7", "lexicon"),
        ("blocks.0.out/7", "protected_attribute"), ("blocks.5.out/11", "protected_attribute"),
    ]
    assert "lexicon 'gendered'" in flags.policy and "protected groups" in flags.policy
    assert flags.policy.count("Flags were chosen automatically") == 1


def test_a_rule_without_suggestions_is_not_in_the_policy() -> None:
    """`auto` on a dataset without a protected attribute flags the lexicon's features and says only that."""
    flags = flags_from_suggestions(SUGGESTIONS[:2], kind=("lexicon", "protected_attribute"))
    assert "lexicon 'gendered'" in flags.policy and "protected groups" not in flags.policy


def test_no_suggestion_of_the_asked_rules_is_a_clear_error() -> None:
    with pytest.raises(ValueError) as err:
        flags_from_suggestions(SUGGESTIONS[:2], kind="protected_attribute")
    assert str(err.value) == NO_SUGGESTIONS.format(kind="protected_attribute")


def test_resolve_flags_auto_reads_both_kinds_from_the_run(tmp_path) -> None:
    FeaturesDocument(
        spec="tiny", model="bert", sites=["embeddings.out", "blocks.0.out", "blocks.5.out"], cards_split="validate",
        attribution=AttributionRecord(method="attrib", n_examples=16, batch_size=16, ig_steps=10, seed=0,
                                      train_subset="train", error_scores={}),
        circuit=[], suggestions=SUGGESTIONS, cards=[],
    ).write(tmp_path / "features.json")
    assert resolve_flags("auto:all", tmp_path).spurious() == {
        "blocks.0.out": [7], "blocks.5.out": [11], "embeddings.out": [3],
    }
    assert resolve_flags("auto", tmp_path).spurious() == resolve_flags("auto:all", tmp_path).spurious()
    assert resolve_flags("auto:lexicon", tmp_path).spurious() == {"blocks.0.out": [7], "embeddings.out": [3]}
    with pytest.raises(ValueError) as err:
        resolve_flags("auto:everything", tmp_path)
    assert str(err.value) == BAD_FLAGS.format(value="auto:everything")
