"""Activations of chosen SAE features over a cached split, in one encode pass per site.

The dense code [n_tokens, d_sae] is never held: the cache is encoded in chunks of `batch_rows` tokens, the
requested feature columns are kept as a sparse column-major record (token rows and values of every
nonzero activation, per feature), and every example's max and sum are reduced on the fly (an example's
tokens are contiguous rows of the cache).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from editing_service.activations import ActivationCache
from editing_service.sae.splice import Dictionary, encode_columns

logger = logging.getLogger(__name__)

Reduce = Literal["max", "sum", "mean"]
REDUCES: tuple[Reduce, ...] = ("max", "sum", "mean")

UNKNOWN_FEATURE = "Feature {feature} of site {site!r} was not recorded; recorded: {known}."
BAD_FEATURE = "Feature ids of site {site!r} must lie in [0, {d_sae}), got {bad}."
BAD_REDUCE = "reduce must be one of {known}, got {reduce!r}."
NO_SAE = "No SAE for site {site!r}; SAEs were given for {known}."


@dataclass(eq=False)
class FeatureActivations:
    """Activations of `features` of one site's SAE over every token of a cache.

    Column j (feature `features[j]`) has its nonzero activations at `rows[indptr[j]:indptr[j+1]]`
    (increasing cache rows) with values `values[indptr[j]:indptr[j+1]]`.
    """

    site: str
    features: np.ndarray  # [F] int64 feature ids
    n_tokens: int
    indptr: np.ndarray  # [F + 1] int64
    rows: np.ndarray  # [nnz] int64 cache rows
    values: np.ndarray  # [nnz] float32
    example_max: np.ndarray  # [n_examples, F] float32: max over the example's tokens
    example_sum: np.ndarray  # [n_examples, F] float64: sum over the example's tokens
    example_length: np.ndarray  # [n_examples] tokens per example

    def column(self, feature: int) -> int:
        """Position of a feature id among the recorded features."""
        hits = np.flatnonzero(self.features == feature)
        if hits.size == 0:
            raise KeyError(UNKNOWN_FEATURE.format(feature=feature, site=self.site, known=self.features.tolist()))
        return int(hits[0])

    def token_activations(self, feature: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, values) of the feature's nonzero token activations."""
        j = self.column(feature)
        span = slice(int(self.indptr[j]), int(self.indptr[j + 1]))
        return self.rows[span], self.values[span]

    def firing_rate(self, feature: int) -> float:
        """Share of the cache's tokens on which the feature is nonzero."""
        j = self.column(feature)
        return float(self.indptr[j + 1] - self.indptr[j]) / max(self.n_tokens, 1)

    def dense(self, feature: int) -> np.ndarray:
        """[n_tokens] float32 activations of one feature."""
        rows, values = self.token_activations(feature)
        out = np.zeros(self.n_tokens, dtype=np.float32)
        out[rows] = values
        return out

    def example_values(self, feature: int, reduce: Reduce = "max") -> np.ndarray:
        """[n_examples] example-level activation: max, sum or mean over the example's tokens."""
        j = self.column(feature)
        if reduce == "max":
            return self.example_max[:, j].astype(np.float64)
        if reduce == "sum":
            return self.example_sum[:, j]
        if reduce == "mean":
            return self.example_sum[:, j] / np.maximum(self.example_length, 1)
        raise ValueError(BAD_REDUCE.format(known=list(REDUCES), reduce=reduce))


def feature_activations(
    sae: Dictionary,
    cache: ActivationCache,
    site: str,
    *,
    features: Sequence[int] | np.ndarray | None = None,
    batch_rows: int = 8192,
) -> FeatureActivations:
    """Encode a site's cached tokens in chunks and record `features` (all of them when None).

    Peak memory is about `batch_rows * d_sae` floats (a chunk's pre-activations or dense code): ~0.5 GB
    for an SAE of 16k features at the default. A TopK SAE's dense code is never built (`encode_topk`).
    """
    d_sae = int(sae.W_dec.shape[0])
    ids = np.arange(d_sae) if features is None else np.asarray(features, dtype=np.int64).reshape(-1)
    ids = np.asarray(list(dict.fromkeys(ids.tolist())), dtype=np.int64)  # duplicates dropped, order kept
    bad = ids[(ids < 0) | (ids >= d_sae)]
    if bad.size:
        raise ValueError(BAD_FEATURE.format(site=site, d_sae=d_sae, bad=bad.tolist()))
    n_tokens, n_examples = cache.n_tokens, cache.n_examples
    device = sae.W_dec.device
    column_of = torch.full((d_sae,), -1, dtype=torch.int64, device=device)  # feature id -> column, -1 if not kept
    column_of[torch.as_tensor(ids, device=device)] = torch.arange(ids.size, device=device)
    example_max = np.full((n_examples, ids.size), -np.inf, dtype=np.float32)
    example_sum = np.zeros((n_examples, ids.size), dtype=np.float64)
    found_rows, found_cols, found_values = [], [], []
    for start in range(0, n_tokens, batch_rows):
        stop = min(start + batch_rows, n_tokens)
        x = torch.tensor(cache.read(site, slice(start, stop)), device=device)  # a copy: memmap rows are read-only
        r, c, v = _encode_kept(sae, x, column_of)
        block = np.zeros((stop - start, ids.size), dtype=np.float32)  # [rows, F]
        block[r, c] = v
        _reduce_examples(block, cache.example_index[start:stop], example_max, example_sum)
        found_rows.append(r + start)
        found_cols.append(c)
        found_values.append(v)
    rows = np.concatenate(found_rows) if found_rows else np.zeros(0, np.int64)
    col = np.concatenate(found_cols) if found_cols else np.zeros(0, np.int64)
    values = np.concatenate(found_values) if found_values else np.zeros(0, np.float32)
    order = np.argsort(col, kind="stable")  # rows stay increasing within each feature
    indptr = np.zeros(ids.size + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(col, minlength=ids.size))
    logger.debug("site %s: %d features, %d nonzero of %d tokens", site, ids.size, rows.size, n_tokens)
    return FeatureActivations(
        site=site, features=ids, n_tokens=n_tokens, indptr=indptr, rows=rows[order],
        values=values[order].astype(np.float32, copy=False), example_max=example_max,
        example_sum=example_sum, example_length=np.asarray(cache.example_length, dtype=np.int64),
    )


@torch.inference_mode()
def _encode_kept(sae: Dictionary, x: torch.Tensor, column_of: torch.Tensor) -> tuple[np.ndarray, ...]:
    """(row, column, value) of the nonzero activations of the kept features in a chunk x [rows, d_in].

    A TopK SAE is read through `encode_topk` (k active features per token, never a dense [rows, d_sae]
    code); any other SAE through `encode_columns` (only the kept columns, where the architecture allows).
    """
    if hasattr(sae, "encode_topk"):
        values, indices = sae.encode_topk(x)  # [rows, k]
        column = column_of[indices]
        keep = (column >= 0) & (values != 0)
        rows = keep.nonzero()[:, 0]
        found = (rows, column[keep], values[keep])
    else:
        kept = (column_of >= 0).nonzero()[:, 0]
        block = encode_columns(sae, x, kept)  # kept is ascending; map back to the caller's columns
        rows, local = block.nonzero(as_tuple=True)
        found = (rows, column_of[kept[local]], block[rows, local])
    r, c, v = (t.cpu() for t in found)
    return r.numpy().astype(np.int64), c.numpy().astype(np.int64), v.float().numpy()


def _reduce_examples(
    block: np.ndarray, example_index: np.ndarray, example_max: np.ndarray, example_sum: np.ndarray
) -> None:
    """Fold a chunk [rows, F] into the per-example max and sum (examples are contiguous runs of rows)."""
    if block.shape[0] == 0:
        return
    starts = np.concatenate([[0], np.flatnonzero(np.diff(example_index)) + 1])
    examples = example_index[starts]  # distinct within a chunk
    example_max[examples] = np.maximum(example_max[examples], np.maximum.reduceat(block, starts, axis=0))
    example_sum[examples] += np.add.reduceat(block.astype(np.float64), starts, axis=0)


def site_name(site: object) -> str:
    """A site's name, whether given as a string or as a `Site`."""
    return site if isinstance(site, str) else str(site.name)  # type: ignore[attr-defined]


def collect_feature_activations(
    *,
    saes: Mapping[object, Dictionary],
    cache: ActivationCache,
    features: Iterable[tuple[str, int]],
    batch_rows: int = 8192,
) -> dict[str, FeatureActivations]:
    """Record the requested (site, feature) pairs: one encode pass per site that has any.

    `saes` is keyed by site name or `Site`.
    """
    by_name = {site_name(k): v for k, v in saes.items()}
    wanted: dict[str, list[int]] = {}
    for site, feature in features:
        ids = wanted.setdefault(site_name(site), [])
        if int(feature) not in ids:
            ids.append(int(feature))
    out = {}
    for site, ids in wanted.items():
        if site not in by_name:
            raise KeyError(NO_SAE.format(site=site, known=sorted(by_name)))
        out[site] = feature_activations(by_name[site], cache, site, features=ids, batch_rows=batch_rows)
    return out
