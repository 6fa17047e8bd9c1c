"""Concept lexicons: named word lists (shipped under `lexicons/`) or the user's own words.

A lexicon is a set of normalised words (see `normalise_token`). `load_lexicon` accepts a shipped name
("gendered"), a path to a text file (one word a line, '# ' starts a comment), or an iterable of words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from editing_service.features.tokens import normalise_token

_COMMENT = re.compile(r"(^|\s)#(\s.*)?$")

UNKNOWN_LEXICON = "Unknown lexicon {source!r}: neither a shipped lexicon ({shipped}) nor an existing file."
EMPTY_LEXICON = "Lexicon {name!r} has no words."


@dataclass(frozen=True)
class Lexicon:
    """A named set of normalised words."""

    name: str
    words: frozenset[str]

    def __contains__(self, word: object) -> bool:
        return word in self.words

    def __len__(self) -> int:
        return len(self.words)


def shipped_lexicons() -> list[str]:
    """Names of the lexicons shipped with the package."""
    folder = resources.files("editing_service.features") / "lexicons"
    return sorted(p.name.removesuffix(".txt") for p in folder.iterdir() if p.name.endswith(".txt"))


def parse_words(lines: Iterable[str], *, comments: bool = False) -> frozenset[str]:
    """Normalised words of some lines; blank lines are skipped, and with `comments` a '#' followed by a
    space or the line end starts a comment (so WordPiece pieces like '##ing' stay words)."""
    words = (normalise_token(_COMMENT.sub("", line) if comments else line) for line in lines)
    return frozenset(w for w in words if w)


def load_lexicon(source: str | Path | Lexicon | Iterable[str], *, name: str | None = None) -> Lexicon:
    """A lexicon from a shipped name, a file path, or words."""
    if isinstance(source, Lexicon):
        return source
    if isinstance(source, str) and source in shipped_lexicons():
        text = (resources.files("editing_service.features") / "lexicons" / f"{source}.txt").read_text("utf-8")
        lexicon = Lexicon(name=name or source, words=parse_words(text.splitlines(), comments=True))
    elif isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ValueError(UNKNOWN_LEXICON.format(source=str(source), shipped=", ".join(shipped_lexicons())))
        lexicon = Lexicon(name=name or path.stem, words=parse_words(path.read_text("utf-8").splitlines(), comments=True))
    else:
        lexicon = Lexicon(name=name or "custom", words=parse_words(source))
    if not lexicon.words:
        raise ValueError(EMPTY_LEXICON.format(name=lexicon.name))
    return lexicon
