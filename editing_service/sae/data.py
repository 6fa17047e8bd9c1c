"""Cached activations as training data: validation, random samples and shuffled mini-batch streams.

Activations are a 2-D array-like [n_tokens, d_in]: a numpy array, an `np.memmap` larger than memory, or a
torch tensor, in float16 / float32 / float64. Batches come from chunks (2^16 rows by default) gathered from
random blocks of contiguous rows, so only one chunk is ever in memory and disk reads stay sequential.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

logger = logging.getLogger(__name__)

ActivationArray = Any  # np.ndarray | np.memmap | torch.Tensor; typed loosely for array-likes
ERR_NOT_2D = "activations must be a 2-D array [n_tokens, d_in], got shape {shape}"
ERR_DTYPE = "activations must be float16, float32 or float64, got {dtype}"
ERR_EMPTY = "activations are empty: shape {shape}"
_FLOAT_NP = (np.float16, np.float32, np.float64)
_FLOAT_TORCH = (torch.float16, torch.float32, torch.float64, torch.bfloat16)
BLOCK_ROWS = 256  # contiguous rows per read when shuffling
_NP_OF_TORCH = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


class BatchSource(Protocol):
    """Training batches that are not in an array: activations streamed from forward passes."""

    @property
    def n_tokens(self) -> int:
        """Tokens in one epoch of the source."""
        ...

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        """An endless iterator of shuffled batches [batch_size, d_in], in float32."""
        ...


def check_activations(activations: ActivationArray, d_in: int | None = None) -> tuple[int, int]:
    """Return (n_tokens, d_in) of a valid activation array, or raise ValueError / TypeError."""
    if isinstance(activations, Tensor):
        shape, ok = tuple(activations.shape), activations.dtype in _FLOAT_TORCH
        dtype = activations.dtype
    elif isinstance(activations, np.ndarray):
        shape, ok, dtype = activations.shape, activations.dtype.type in _FLOAT_NP, activations.dtype
    else:
        raise TypeError(
            f"activations must be a numpy array, np.memmap or torch tensor, got {type(activations).__name__}"
        )
    if len(shape) != 2:
        raise ValueError(ERR_NOT_2D.format(shape=shape))
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(ERR_EMPTY.format(shape=shape))
    if not ok:
        raise ValueError(ERR_DTYPE.format(dtype=dtype))
    if d_in is not None and shape[1] != d_in:
        raise ValueError(f"expected activations whose last dimension is d_in={d_in}, got shape {shape}")
    return int(shape[0]), int(shape[1])


def read_rows(
    activations: ActivationArray, rows: slice | np.ndarray, *, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Rows of `activations` (a slice, or sorted int indices) as a tensor on `device`."""
    if isinstance(activations, Tensor):
        index = rows if isinstance(rows, slice) else torch.from_numpy(rows).to(activations.device)
        return activations[index].to(device=device, dtype=dtype)
    block = np.ascontiguousarray(activations[rows])
    np_dtype = _NP_OF_TORCH.get(dtype, np.float32)  # bfloat16 has no numpy twin: go through float32
    if block.dtype != np_dtype:
        block = block.astype(np_dtype)  # one copy: from disk (memmap) and into the training dtype
    elif not block.flags.writeable:
        block = block.copy()  # read-only memmap: torch wants writable memory
    return torch.from_numpy(block).to(device=device, dtype=dtype)


def sample_rows(
    activations: ActivationArray,
    n: int,
    rng: np.random.Generator,
    *,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """Up to `n` distinct random rows (read in file order), as a tensor [min(n, n_tokens), d_in]."""
    n_tokens = int(activations.shape[0])
    if n >= n_tokens:
        return read_rows(activations, slice(0, n_tokens), device=device, dtype=dtype)
    rows = np.sort(rng.choice(n_tokens, size=n, replace=False))
    return read_rows(activations, rows, device=device, dtype=dtype)


def norm_scale(sample: Tensor) -> float:
    """The scalar s with E||s x||^2 = d_in on the sample (1.0 for an all-zero sample)."""
    mean_sq = float(sample.double().pow(2).sum(-1).mean())
    return float(np.sqrt(sample.shape[1] / mean_sq)) if mean_sq > 0 else 1.0


def geometric_median(points: Tensor, *, n_iter: int = 50, tol: float = 1e-4) -> Tensor:
    """Weiszfeld's algorithm: the point minimising the summed distance to `points` [n, d]."""
    median = points.mean(0)
    for _ in range(n_iter):
        dist = (points - median).norm(dim=1).clamp_min(1e-8)  # [n]
        weights = 1.0 / dist
        new = (weights[:, None] * points).sum(0) / weights.sum()
        shift = float((new - median).norm())
        median = new
        if shift <= tol * max(float(median.norm()), 1.0):
            break
    return median


def iter_batches(
    activations: ActivationArray,
    *,
    batch_size: int,
    chunk_rows: int,
    scale: float,
    rng: np.random.Generator,
    device: torch.device,
    dtype: torch.dtype,
) -> Iterator[Tensor]:
    """Endless stream of shuffled batches [batch_size, d_in], multiplied by `scale`, epoch after epoch.

    Rows are read in blocks of up to BLOCK_ROWS contiguous rows; every epoch the blocks are shuffled and
    each chunk of about `chunk_rows` rows gathers the next random blocks (read in file order), then has its
    rows permuted. A batch thus mixes tokens from all over the data (sequential reads stay long enough
    for a memmap), and a chunk's leftover rows are carried into the next chunk: every row is used once per
    epoch (up to the last partial batch), whatever the chunk and batch sizes.
    """
    n_tokens = int(activations.shape[0])
    block = max(1, min(BLOCK_ROWS, chunk_rows))
    n_blocks = -(-n_tokens // block)
    per_chunk = max(1, chunk_rows // block)
    offsets = np.arange(block)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(rng.integers(2**62)))
    leftover: Tensor | None = None
    while True:
        order = rng.permutation(n_blocks)
        for first in range(0, n_blocks, per_chunk):
            blocks = np.sort(order[first : first + per_chunk])
            rows = (blocks[:, None] * block + offsets).ravel()
            rows = rows[rows < n_tokens]
            chunk = read_rows(activations, rows, device=device, dtype=dtype)
            # Indexing copies, so the in-place scaling never touches the caller's array.
            chunk = chunk[torch.randperm(chunk.shape[0], generator=generator, device=device)]
            if scale != 1.0:
                chunk.mul_(scale)
            if leftover is not None and leftover.shape[0] > 0:
                chunk = torch.cat([leftover, chunk])
            n_full = chunk.shape[0] // batch_size
            for b in range(n_full):
                yield chunk[b * batch_size : (b + 1) * batch_size]
            leftover = chunk[n_full * batch_size :]
