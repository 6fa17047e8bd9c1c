"""The activation cache equals a direct forward pass, token for token, in every storage dtype."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import make_model_folder

from editing_service.activations import ActivationCache, collect_activations
from editing_service.model import capture, load_classifier

TEXTS = ["she works as a nurse in the ward", "he is a surgeon", "the hospital team", "a nurse", "he"]


@pytest.mark.parametrize(("dtype", "atol"), [("float32", 1e-5), ("float16", 2e-3), ("bfloat16", 2e-2)])
def test_cache_rows_equal_a_direct_forward(tmp_path, dtype: str, atol: float) -> None:
    clf = load_classifier(make_model_folder(tmp_path, "bert"), classes=["nurse", "surgeon"])
    sites = clf.sites(("block", "mlp"))
    labels = np.array([0, 1, 0, 0, 1])
    cache = collect_activations(
        clf, TEXTS, sites=sites, out_dir=tmp_path / "cache", labels=labels, dtype=dtype, batch_size=2,
        progress=False,
    )
    reopened = ActivationCache.open(tmp_path / "cache")
    lengths = [len(clf.tokenizer(t)["input_ids"]) for t in TEXTS]
    assert reopened.n_tokens == sum(lengths) and reopened.n_examples == len(TEXTS)
    np.testing.assert_array_equal(reopened.labels, labels)
    for i, text in enumerate(TEXTS):
        batch = clf.tokenizer([text], return_tensors="pt")
        with torch.no_grad(), capture(clf.backbone, sites) as store:
            features, _ = clf.head_features(batch["input_ids"], batch["attention_mask"])
        rows = reopened.example_rows(i)
        np.testing.assert_array_equal(reopened.token_id[rows], batch["input_ids"][0].numpy())
        np.testing.assert_array_equal(reopened.position[rows], np.arange(lengths[i]))
        assert (reopened.example_index[rows] == i).all()
        np.testing.assert_allclose(reopened.head_features[i], features[0].numpy(), atol=1e-5)
        for site in sites:
            np.testing.assert_allclose(reopened.read(site.name, rows), store[site.name][0].numpy(), atol=atol,
                                       rtol=atol)
    assert cache.read("blocks.0.out").dtype == np.float32


def test_opening_an_incomplete_cache_fails_clearly(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not a complete activation cache"):
        ActivationCache.open(tmp_path)


def test_a_token_sample_per_text_keeps_the_same_rows_whatever_the_batching(tmp_path) -> None:
    from editing_service.activations.collect import BAD_TOKENS_PER_TEXT

    clf = load_classifier(make_model_folder(tmp_path, "gpt2"), classes=["nurse", "surgeon"])
    sites = clf.sites()
    full = collect_activations(clf, TEXTS, sites=sites, out_dir=tmp_path / "full", batch_size=2, progress=False)
    samples = [collect_activations(clf, TEXTS, sites=sites, out_dir=tmp_path / f"k{b}", batch_size=b,
                                   progress=False, tokens_per_text=3, seed=7) for b in (1, 5)]
    counts = clf.token_counts(np.array([len(clf.tokenizer(t)["input_ids"]) for t in TEXTS]))  # the sink left out
    for sample in samples:
        np.testing.assert_array_equal(sample.example_length, np.minimum(counts, 3))
        assert sample.n_tokens == int(np.minimum(counts, 3).sum()) and sample.meta["tokens_per_text"] == 3
        np.testing.assert_allclose(sample.head_features, full.head_features, atol=1e-5)  # padding: ulps
        for i in range(len(TEXTS)):
            rows, all_rows = sample.example_rows(i), full.example_rows(i)
            positions = sample.position[rows]
            assert (np.diff(positions) > 0).all() and set(positions) <= set(full.position[all_rows])
            at = np.searchsorted(full.position[all_rows], positions)  # the sampled tokens among all the text's
            np.testing.assert_array_equal(sample.token_id[rows], full.token_id[all_rows][at])
            for site in sites:
                np.testing.assert_allclose(sample.read(site.name, rows), full.read(site.name, all_rows)[at],
                                           atol=1e-5)
    np.testing.assert_array_equal(samples[0].position[samples[0].example_rows(0)],
                                  samples[1].position[samples[1].example_rows(0)])
    assert len(set(samples[0].position[samples[0].example_rows(0)])) == 3  # the first text is longer than 3
    with pytest.raises(ValueError) as err:
        collect_activations(clf, TEXTS, sites=sites, out_dir=tmp_path / "bad", progress=False, tokens_per_text=0)
    assert str(err.value) == BAD_TOKENS_PER_TEXT.format(value=0)
