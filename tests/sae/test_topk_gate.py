"""The served edit of TopK features against the TopK codes: precision and recall on held-out tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import make_model_folder
from sae_factories import planted_data

from editing_service.edit import FeatureAblation, load_model, save_model
from editing_service.model import load_classifier
from editing_service.model.sites import Site
from editing_service.sae import SAETrainer, TopKSAE, fit_topk_gate, topk_to_jumprelu

SITE = Site("blocks.0.out", 0, "block", "encoder.layer.0")


@pytest.fixture(scope="module")
def planted() -> tuple[TopKSAE, np.ndarray, np.ndarray]:
    """A TopK SAE trained on planted sparse data (offset, 3 of 48 directions per token, scale varying by
    token) and held-out tokens from the same distribution."""
    x, _ = planted_data(n=9000, d=32, m=48, active=3, seed=1)
    scale = np.random.default_rng(2).uniform(0.5, 2.0, (len(x), 1)).astype(np.float32)
    x = x * scale  # tokens of different norms: a fixed per-feature threshold cannot follow them
    torch.set_num_threads(1)
    sae = SAETrainer(d_sae=64, k=3, batch_size=256, n_epochs=20, lr=3e-3).fit(x[:6000]).sae_
    return sae, x[:6000], x[6000:]


def test_the_gated_served_edit_follows_the_topk_codes_on_held_out_tokens_far_better_than_thresholds(
    planted,
) -> None:
    """Measured on this case: gate precision 0.953 / recall 0.919, per-feature JumpReLU thresholds 0.874 /
    0.605 (tokens whose norms vary 4x: a fixed threshold cannot follow the token's TopK cut)."""
    sae, train, heldout = planted
    gate = fit_topk_gate(sae, train)
    features = list(range(sae.d_sae))
    x = torch.from_numpy(heldout)
    gated = FeatureAblation.from_sae(SITE, sae, features, gate=gate).agreement(sae, x)
    jump = FeatureAblation.from_sae(SITE, topk_to_jumprelu(sae, train), features).agreement(sae, x)
    assert gated["precision"] >= 0.94 and gated["recall"] >= 0.9, gated
    assert jump["recall"] < 0.7 and gated["recall"] > jump["recall"] + 0.2, (gated, jump)
    assert gated["precision"] > jump["precision"], (gated, jump)


def test_agreement_counts_exactly_the_shared_firings(planted) -> None:
    sae, train, heldout = planted
    features = [0, 5, 9]
    edit = FeatureAblation.from_sae(SITE, topk_to_jumprelu(sae, train), features)
    x = torch.from_numpy(heldout[:500])
    with torch.no_grad():
        fired = sae.encode(x)[:, features] > 0
        served = edit.activations(x) > 0
    stats = edit.agreement(sae, x)
    assert stats["sae_firings"] == int(fired.sum()) and stats["served_firings"] == int(served.sum())
    assert stats["precision"] == pytest.approx(float((fired & served).sum()) / float(served.sum()))
    assert stats["recall"] == pytest.approx(float((fired & served).sum()) / float(fired.sum()))


def test_the_gated_edit_removes_exactly_the_gated_codes_in_both_forms(planted) -> None:
    sae, train, heldout = planted
    gate = fit_topk_gate(sae, train)
    features = [1, 2, 3, 10, 20]
    edit = FeatureAblation.from_sae(SITE, sae, features, gate=gate)
    x = torch.from_numpy(heldout[:300])
    with torch.no_grad():
        z = sae.pre_activations(x)
        f = z * gate.fires(z, x)
    expected = x - f[:, features] @ sae.W_dec[features]
    torch.testing.assert_close(edit(x), expected, atol=1e-5, rtol=1e-5)
    with torch.inference_mode():
        torch.testing.assert_close(edit.rewrite_(x.clone()), expected, atol=1e-4, rtol=1e-4)


def test_a_gated_edit_round_trips_through_save_and_load(planted, tmp_path) -> None:
    sae, train, _ = planted
    clf = load_classifier(make_model_folder(tmp_path, "bert"), classes=["nurse", "surgeon"])
    clf.set_head(torch.nn.Linear(32, 2))
    site = clf.sites()[0]
    clf.set_interventions([FeatureAblation.from_sae(site, sae, [1, 4, 7], gate=fit_topk_gate(sae, train))])
    texts = ["she is a nurse", "he is a surgeon in the hospital"]
    expected = clf.predict_proba(texts)
    loaded = load_model(save_model(clf, tmp_path / "edited"))
    assert loaded.interventions[0].gated
    np.testing.assert_allclose(loaded.predict_proba(texts), expected, atol=1e-6)
