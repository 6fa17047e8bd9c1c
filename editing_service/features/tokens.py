"""Token strings of an activation cache: one lookup per distinct token id, shared by cards and suggestions.

`normalise_token` strips subword markers (WordPiece '##', byte-level BPE 'Ġ', SentencePiece '▁') and
lowercases, so "Ġshe", "▁She" and "she" all read as "she" when matched against a lexicon.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from editing_service.activations import ActivationCache

_MARKERS = ("##", "Ġ", "▁")


class TokenConverter(Protocol):
    """What we need of a tokenizer: `PreTrainedTokenizerBase.convert_ids_to_tokens`."""

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]: ...  # pragma: no cover


def strip_markers(token: str) -> str:
    """The token without its subword markers and surrounding spaces, case kept ("##ing" -> "ing")."""
    text = token.strip()
    for marker in _MARKERS:
        if text.startswith(marker):
            text = text[len(marker) :]
    return text.replace("▁", " ").replace("Ġ", " ").strip()


def normalise_token(token: str) -> str:
    """The form matched against lexicons: markers stripped, lowercase."""
    return strip_markers(token).lower()


@dataclass(frozen=True, eq=False)
class TokenVocab:
    """The distinct tokens of a cache and, for every cached token row, which of them it is."""

    ids: np.ndarray  # [V] int64 distinct token ids, sorted
    strings: list[str]  # [V] raw token strings (as the tokenizer writes them)
    inverse: np.ndarray  # [n_tokens] int64: row -> index into ids / strings

    @classmethod
    def from_token_ids(cls, token_ids: np.ndarray, tokenizer: TokenConverter) -> TokenVocab:
        ids, inverse = np.unique(np.asarray(token_ids, dtype=np.int64), return_inverse=True)
        raw = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
        strings = [s if isinstance(s, str) else f"<{i}>" for i, s in zip(ids.tolist(), raw, strict=True)]
        return cls(ids=ids, strings=strings, inverse=inverse.reshape(-1))

    @classmethod
    def from_cache(cls, cache: ActivationCache, tokenizer: TokenConverter) -> TokenVocab:
        return cls.from_token_ids(cache.token_id, tokenizer)

    @cached_property
    def normalised(self) -> list[str]:
        return [normalise_token(s) for s in self.strings]

    def mask(self, words: Collection[str]) -> np.ndarray:
        """[V] bool: distinct tokens whose normalised string is in `words`."""
        return np.fromiter((w in words for w in self.normalised), dtype=bool, count=len(self.strings))

    def tokens_of(self, rows: np.ndarray | slice) -> Sequence[str]:
        """Raw token strings of some cache rows."""
        return [self.strings[i] for i in self.inverse[rows].tolist()]
