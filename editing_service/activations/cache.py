"""The on-disk activation cache: one memory-mapped matrix per site, plus the token index.

Layout of a cache folder (fixed file names):
    meta.json                 sites {name: d}, dtype, n_examples, n_tokens, model and split info
    tokens.npz                example_index [n_tokens] int32, position [n_tokens] int32,
                              token_id [n_tokens] int32, example_start [n_examples] int64,
                              example_length [n_examples] int32
    head_features.npy         [n_examples, d_head] float32: what the classifier's head reads
    labels.npy                [n_examples] int64 (when labels were given)
    sites/<site>.bin          [n_tokens, d] raw matrix in `dtype` (bfloat16 stored as uint16)
Rows are non-pad tokens only; each example's tokens are contiguous, starting at example_start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

CacheDtype = Literal["float32", "float16", "bfloat16"]
_NUMPY_STORAGE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

NOT_A_CACHE = "{path} is not a complete activation cache (meta.json missing)."
UNKNOWN_CACHE_SITE = "The activation cache has no site {name!r}; it has {known}."


def bytes_per_value(dtype: CacheDtype) -> int:
    """Bytes one activation takes in a cache stored as `dtype`."""
    return int(np.dtype(_NUMPY_STORAGE[dtype]).itemsize)


def to_storage(hidden: torch.Tensor, dtype: CacheDtype) -> np.ndarray:
    """A float tensor as the numpy array written to the cache."""
    tensor = hidden.detach().to("cpu", TORCH_DTYPES[dtype])
    if dtype == "bfloat16":
        return tensor.view(torch.int16).numpy().view(np.uint16)
    return tensor.numpy()


@dataclass
class ActivationCache:
    """An opened cache folder (see the module docstring for its layout)."""

    root: Path
    meta: dict[str, Any]
    example_index: np.ndarray
    position: np.ndarray
    token_id: np.ndarray
    example_start: np.ndarray
    example_length: np.ndarray
    head_features: np.ndarray
    labels: np.ndarray | None
    _sites: dict[str, np.memmap | torch.Tensor] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, root: str | Path) -> ActivationCache:
        root = Path(root)
        if not (root / "meta.json").is_file():
            raise FileNotFoundError(NOT_A_CACHE.format(path=root))
        meta = json.loads((root / "meta.json").read_text())
        tokens = np.load(root / "tokens.npz")
        labels_path = root / "labels.npy"
        return cls(
            root=root,
            meta=meta,
            example_index=tokens["example_index"],
            position=tokens["position"],
            token_id=tokens["token_id"],
            example_start=tokens["example_start"],
            example_length=tokens["example_length"],
            head_features=np.load(root / "head_features.npy"),
            labels=np.load(labels_path) if labels_path.is_file() else None,
        )

    @property
    def site_names(self) -> list[str]:
        return list(self.meta["sites"])

    @property
    def n_tokens(self) -> int:
        return int(self.meta["n_tokens"])

    @property
    def n_examples(self) -> int:
        return int(self.meta["n_examples"])

    def site(self, name: str) -> np.memmap | torch.Tensor:
        """The [n_tokens, d] activations of one site, memory-mapped: an `np.memmap` for float32 and
        float16 caches, a file-backed `torch.Tensor` for bfloat16 (numpy has no bfloat16)."""
        if name not in self.meta["sites"]:
            raise KeyError(UNKNOWN_CACHE_SITE.format(name=name, known=self.site_names))
        if name not in self._sites:
            dtype: CacheDtype = self.meta["dtype"]
            shape = (self.n_tokens, int(self.meta["sites"][name]))
            path = site_path(self.root, name)
            if dtype == "bfloat16":
                flat = torch.from_file(str(path), shared=False, size=shape[0] * shape[1], dtype=torch.bfloat16)
                self._sites[name] = flat.view(shape)
            else:
                self._sites[name] = np.memmap(path, mode="r", dtype=_NUMPY_STORAGE[dtype], shape=shape)
        return self._sites[name]

    def read(self, name: str, index: Any = slice(None)) -> np.ndarray:
        """Rows of one site as a float32 numpy array."""
        block = self.site(name)[index]
        if isinstance(block, torch.Tensor):
            return block.float().numpy()
        return np.asarray(block, dtype=np.float32)

    def example_rows(self, example: int) -> slice:
        """Rows of the site matrices that belong to one example."""
        start = int(self.example_start[example])
        return slice(start, start + int(self.example_length[example]))


def site_path(root: Path, name: str) -> Path:
    return root / "sites" / f"{name}.bin"
