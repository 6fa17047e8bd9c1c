"""BatchTopK: the batch-wide selection is exact, its sparse backward equals dense autograd, the inference
threshold gives k features per token on the calibration sample, and the saved SAE is the JumpReLU it serves."""

from __future__ import annotations

import pytest
import torch
from sae_factories import batch_top_k, make_sae

from editing_service.sae import BatchTopKSAE, JumpReLUSAE, SAETrainer, load_sae, save_sae
from editing_service.sae.base import TrainContext


@pytest.mark.parametrize("seed", range(5))
def test_the_selection_is_the_batchs_k_n_largest_even_when_a_few_tokens_take_most(seed: int) -> None:
    sae = make_sae("batchtopk", d_in=8, d_sae=64, k=4)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(50, 64, generator=g)
    z[3] += 5.0  # one token whose every feature is among the batch's largest
    z[7] += 2.0
    tokens, feats, offsets = sae._select(z)
    want = z.reshape(-1).topk(4 * 50).indices.sort().values
    assert torch.equal(tokens * 64 + feats, want)
    assert int((tokens == 3).sum()) == 64
    assert torch.equal(offsets, torch.searchsorted(tokens, torch.arange(50)))


def test_the_sparse_backward_matches_dense_autograd_aux_loss_included() -> None:
    sae = make_sae("batchtopk", d_in=6, d_sae=24, k=3, dtype="float64")
    x = torch.randn(30, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    dead = torch.tensor([1, 5, 7, 11, 20])
    out = sae.training_loss(x, TrainContext(dead_features=dead, aux_k=2, aux_coefficient=0.5))
    fast = torch.autograd.grad(out.loss, list(sae.parameters()))

    norms = sae.W_dec.norm(dim=1)
    w_enc, b_enc, w_dec = sae.W_enc * norms, sae.b_enc * norms, sae.W_dec / norms[:, None]
    z = (x - sae.b_dec) @ w_enc + b_enc
    chosen = z.detach().reshape(-1).topk(3 * 30).indices
    f = torch.zeros_like(z).reshape(-1).scatter(0, chosen, z.reshape(-1)[chosen].relu()).reshape(z.shape)
    err = x - (f @ w_dec + sae.b_dec)
    z_dead = z[:, dead]
    top = z_dead.detach().topk(2, dim=1).indices
    f_dead = torch.zeros_like(z_dead).scatter(1, top, z_dead.gather(1, top).relu())
    residual = err.detach()
    aux = 0.5 * (f_dead @ w_dec[dead] - residual).pow(2).sum() / residual.pow(2).sum()
    ref = torch.autograd.grad(err.pow(2).sum(-1).mean() + aux, list(sae.parameters()))
    for got, want in zip(fast, ref, strict=True):
        torch.testing.assert_close(got, want)


def test_a_trained_sae_is_the_jumprelu_it_serves_with_k_features_per_token_on_the_sample(tmp_path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 16, generator=g) @ torch.randn(16, 16, generator=g) + 2.0
    trainer = SAETrainer(architecture="batchtopk", d_sae=64, k=5, batch_size=256, n_epochs=2, sample_size=4000)
    sae = trainer.fit(x).sae_
    assert type(sae) is JumpReLUSAE
    assert sae.cfg.metadata["trained_as"] == "batchtopk" and sae.cfg.metadata["k"] == 5
    assert torch.unique(sae.threshold).numel() == 1 and float(sae.threshold.detach()[0]) > 0
    l0 = float((sae.encode(x) > 0).sum(-1).float().mean())
    assert l0 == pytest.approx(5.0, abs=0.01)  # the sample is every row here
    save_sae(sae, tmp_path / "sae")
    loaded = load_sae(tmp_path / "sae")
    assert type(loaded) is JumpReLUSAE
    torch.testing.assert_close(loaded.encode(x), sae.encode(x))


def test_the_threshold_follows_the_folds() -> None:
    """Calibrated on normalised inputs and decoder-direction codes, the threshold must still pick the same
    features of raw inputs once the input scale and decoder norms are folded into the weights."""
    sae = make_sae("batchtopk", d_in=8, d_sae=32, k=4)
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    scale = 0.37
    sae.finish_training_(x * scale)
    norms = sae.W_dec.norm(dim=1)
    z_rescaled = ((x * scale - sae.b_dec) @ sae.W_enc + sae.b_enc) * norms
    before = z_rescaled > sae.threshold
    with torch.no_grad():
        sae.fold_decoder_norm_()
        sae.fold_input_scale_(scale)
    differ = (sae.encode(x) > 0) != (before & (z_rescaled > 0))
    theta = float(sae.threshold[0]) * scale  # in the calibration's units again
    # Only the value the threshold was read from (z == theta) may flip under the folds' rounding.
    assert torch.allclose(z_rescaled[differ], torch.full_like(z_rescaled[differ], theta), rtol=1e-5)
    assert int(differ.sum()) <= 1
    assert isinstance(sae, BatchTopKSAE)
    assert float((sae.encode(x) > 0).sum(-1).float().mean()) == pytest.approx(4.0, abs=0.01)


def test_the_batch_code_is_what_training_reconstructs() -> None:
    sae = make_sae("batchtopk", d_in=8, d_sae=16, k=2)
    with torch.no_grad():
        sae.fold_decoder_norm_()  # unit rows: the plain and the rescaled codes agree
    x = torch.randn(40, 8, generator=torch.Generator().manual_seed(1))
    out = sae.training_loss(x, TrainContext())
    f = batch_top_k(sae, x)
    torch.testing.assert_close(out.mse.detach(), (sae.decode(f) - x).pow(2).sum(-1).mean(), rtol=1e-5, atol=1e-5)


def _fit(architecture: str, **kwargs: float) -> SAETrainer:
    g = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(6_000, 128, generator=g) - 1.0) @ torch.randn(128, 32, generator=g)
    trainer = SAETrainer(architecture=architecture, d_sae=512, k=4, batch_size=256, n_epochs=2, seed=0,
                         log_every=5, **kwargs)
    trainer.fit(x)
    return trainer


def test_batchtopk_trains_without_the_auxiliary_loss_unless_given_a_weight() -> None:
    """Off by default (it revived nothing on real sites and doubled a step's cost); TopK keeps its 1/32."""
    default, weighted, topk = _fit("batchtopk"), _fit("batchtopk", aux_coefficient=1 / 32), _fit("topk")
    for trainer in (default, weighted, topk):
        assert max(h["dead_fraction"] for h in trainer.history_) > 0  # there were dead features to revive
    assert all(h["aux"] == 0 for h in default.history_)
    assert default.sae_.cfg.metadata["aux_k"] is None
    assert any(h["aux"] > 0 for h in weighted.history_) and weighted.sae_.cfg.metadata["aux_k"] is not None
    assert any(h["aux"] > 0 for h in topk.history_)
