"""The head lens reads each example's own tokens, whatever order the cache stores the examples in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from editing_service.activations import ActivationCache
from editing_service.circuit.head_lens import head_lens, pooled


def _cache(tmp_path: Path, x_by_example: list[np.ndarray], order: list[int]) -> ActivationCache:
    """A float32 cache of one site whose examples' runs of rows are stored in `order` (as the collector
    stores them: by length, not by example index)."""
    lengths = np.array([len(x) for x in x_by_example])
    start = np.zeros(len(lengths), dtype=np.int64)
    start[order] = np.concatenate([[0], np.cumsum(lengths[order])[:-1]])
    rows = np.concatenate([x_by_example[i] for i in order]).astype(np.float32)
    (tmp_path / "sites").mkdir()
    rows.tofile(tmp_path / "sites" / "s.bin")
    return ActivationCache(
        root=tmp_path, meta={"sites": {"s": rows.shape[1]}, "n_tokens": len(rows), "n_examples": len(lengths),
                             "dtype": "float32"},
        example_index=np.concatenate([np.full(lengths[i], i) for i in order]),
        position=np.concatenate([np.arange(lengths[i]) for i in order]),
        token_id=np.zeros(len(rows), dtype=np.int64), example_start=start, example_length=lengths.astype(np.int32),
        head_features=np.zeros((len(lengths), 1), dtype=np.float32), labels=None,
    )


def test_pooling_is_each_examples_own_mean_when_examples_are_stored_out_of_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_by_example = [rng.normal(size=(int(n), 5)) for n in rng.integers(1, 9, size=40)]
    order = list(np.argsort([-len(x) for x in x_by_example], kind="stable"))  # longest first, as collected
    assert order != sorted(order)
    cache = _cache(tmp_path, x_by_example, order)
    expected = np.stack([x.mean(0) for x in x_by_example])
    np.testing.assert_allclose(pooled(cache, "s"), expected, rtol=1e-5, atol=1e-6)


def test_the_probe_reads_a_label_planted_in_the_pooled_activation(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=120)
    x_by_example = []
    for label in labels:
        x = rng.normal(size=(int(rng.integers(2, 12)), 4))
        x[:, 0] += 3.0 if label else -3.0
        x_by_example.append(x)
    order = list(np.argsort([len(x) for x in x_by_example], kind="stable"))
    lens = head_lens(_cache(tmp_path, x_by_example, order), ["s"], labels, split="validate")
    assert lens.sites[0].probe_accuracy > 0.95
    json.dumps(lens.model_dump())  # the lens is part of circuit.json
