"""Chunked feature activations equal a dense encode, including examples cut by chunk boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from feature_factories import SITE, hand_cache

from editing_service.features import collect_feature_activations, feature_activations
from editing_service.sae import SAEConfig, TopKSAE, get_sae_class


@pytest.mark.parametrize("architecture", ["topk", "relu", "jumprelu"])
@pytest.mark.parametrize("batch_rows", [1, 3, 1000])
def test_chunked_record_equals_dense_encode(architecture: str, batch_rows: int) -> None:
    rng = np.random.default_rng(0)
    examples = [[("he", rng.standard_normal(8).tolist()) for _ in range(n)] for n in (4, 1, 5, 2)]
    cache = hand_cache(examples)
    cfg = SAEConfig(architecture=architecture, d_in=8, d_sae=12, k=3 if architecture == "topk" else None)
    sae = get_sae_class(architecture)(cfg, generator=torch.Generator().manual_seed(0))
    dense = sae.encode(torch.from_numpy(cache.read(SITE))).detach().numpy()  # [n_tokens, 12]
    chosen = [7, 0, 11]
    record = feature_activations(sae, cache, SITE, features=chosen, batch_rows=batch_rows)
    for j, f in enumerate(chosen):
        np.testing.assert_allclose(record.dense(f), dense[:, f], rtol=1e-6)
        for i in range(cache.n_examples):
            rows = dense[cache.example_rows(i), f]
            assert record.example_max[i, j] == pytest.approx(rows.max(), rel=1e-6)
            assert record.example_sum[i, j] == pytest.approx(rows.sum(), rel=1e-6, abs=1e-6)
        assert record.example_values(f, "mean")[3] == pytest.approx(dense[cache.example_rows(3), f].mean(), abs=1e-6)


def test_unknown_features_are_refused() -> None:
    cache = hand_cache([[("he", [1.0, 0.0])]])
    sae = TopKSAE(SAEConfig(architecture="topk", d_in=2, d_sae=4, k=1))
    with pytest.raises(ValueError, match=r"Feature ids of site 'blocks.0.out' must lie in \[0, 4\), got \[4\]"):
        feature_activations(sae, cache, SITE, features=[1, 4])
    record = collect_feature_activations(saes={SITE: sae}, cache=cache, features=[(SITE, 1), (SITE, 1)])[SITE]
    assert record.features.tolist() == [1]
    with pytest.raises(KeyError, match="Feature 2 of site 'blocks.0.out' was not recorded"):
        record.dense(2)
