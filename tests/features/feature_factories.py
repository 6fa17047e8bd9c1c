"""Hand-built caches, splits and SAEs for the feature tests: every activation is chosen, nothing is random."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import torch
from factories import WORDS, make_tokenizer
from torch import nn

from editing_service.activations import ActivationCache
from editing_service.data import TextSplit

SITE = "blocks.0.out"
TOKENIZER = make_tokenizer(WORDS)


class IdentitySAE(nn.Module):
    """f = relu(x): feature j is input dimension j, so a test plants activations directly."""

    def __init__(self, d: int, W_dec: torch.Tensor | None = None) -> None:
        super().__init__()
        self.W_dec = nn.Parameter(torch.eye(d) if W_dec is None else W_dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.W_dec


def hand_cache(examples: list[list[tuple[str, list[float]]]], labels: list[int] | None = None) -> ActivationCache:
    """An in-memory cache of one site whose rows are the given (token, activations) pairs per example."""
    words = [w for ex in examples for w, _ in ex]
    token_id = np.array(TOKENIZER.convert_tokens_to_ids(words), dtype=np.int32)
    matrix = np.array([acts for ex in examples for _, acts in ex], dtype=np.float32)
    lengths = np.array([len(ex) for ex in examples], dtype=np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return ActivationCache(
        root=Path("."),
        meta={"sites": {SITE: matrix.shape[1]}, "dtype": "float32", "n_examples": len(examples),
              "n_tokens": len(words)},
        example_index=np.repeat(np.arange(len(examples), dtype=np.int32), lengths),
        position=np.concatenate([np.arange(n, dtype=np.int32) for n in lengths]),
        token_id=token_id,
        example_start=starts,
        example_length=lengths,
        head_features=np.zeros((len(examples), 1), dtype=np.float32),
        labels=None if labels is None else np.asarray(labels, dtype=np.int64),
        _sites={SITE: matrix},
    )


def make_split(
    texts: list[str], labels: list[int], groups: dict[str, list[str]],
    label_names: tuple[str, ...] = ("nurse", "surgeon"), name: str = "validate",
) -> TextSplit:
    return TextSplit(
        name=name, texts=texts, labels=np.asarray(labels, dtype=np.int64),
        groups={k: np.asarray(v) for k, v in groups.items()}, label_names=list(label_names),
        dataset=datasets.Dataset.from_dict({"text": texts}),
    )
