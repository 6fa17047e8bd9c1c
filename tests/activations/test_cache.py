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
