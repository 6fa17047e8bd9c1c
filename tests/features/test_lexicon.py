"""Lexicons: the shipped gendered list, user words and files, and token normalisation."""

from __future__ import annotations

import pytest

from editing_service.features import load_lexicon, normalise_token, shipped_lexicons


def test_shipped_gendered_lexicon_has_gendered_words_and_no_occupations() -> None:
    lex = load_lexicon("gendered")
    assert "gendered" in shipped_lexicons()
    assert 100 <= len(lex) <= 200
    for word in ("he", "she", "him", "her", "his", "hers", "himself", "herself", "mr", "mrs", "ms", "mx",
                 "women", "sorority", "fraternity", "nieces", "grandmother"):
        assert word in lex
    for word in ("nurse", "surgeon", "doctor", "engineer", "teacher"):
        assert word not in lex


@pytest.mark.parametrize(("token", "normalised"), [
    ("She", "she"), ("##her", "her"), ("Ġher", "her"), ("▁His", "his"), (" mr ", "mr"), ("[CLS]", "[cls]"),
])
def test_tokens_are_normalised_before_matching(token: str, normalised: str) -> None:
    assert normalise_token(token) == normalised


def test_user_words_and_files_are_normalised(tmp_path) -> None:
    assert load_lexicon(["She", "##HER", " "]).words == frozenset({"she", "her"})
    path = tmp_path / "titles.txt"
    path.write_text("# titles\nDr\nprof  # professor\n\n")
    lex = load_lexicon(path)
    assert lex.name == "titles" and lex.words == frozenset({"dr", "prof"})


def test_unknown_or_empty_lexicon_fails_clearly() -> None:
    with pytest.raises(ValueError, match=r"Unknown lexicon 'nope': neither a shipped lexicon \(gendered"):
        load_lexicon("nope")
    with pytest.raises(ValueError, match="Lexicon 'custom' has no words."):
        load_lexicon(["", "  "])
