"""sae_quality on hand-made cases, and the TopK -> JumpReLU conversion."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sae_factories import make_cfg, planted_data

from editing_service.sae import (
    JumpReLUSAE,
    ReLUSAE,
    SAETrainer,
    TopKSAE,
    sae_quality,
    topk_to_jumprelu,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _identity_relu_sae() -> ReLUSAE:
    """x_hat = relu(x) on the first two coordinates; a third feature that can never fire."""
    sae = ReLUSAE(make_cfg("relu", d_in=2, d_sae=3))
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        sae.b_enc.copy_(torch.tensor([0.0, 0.0, -1.0]))
        sae.W_dec.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
        sae.b_dec.zero_()
    return sae


def test_quality_on_a_hand_made_case() -> None:
    x = np.array([[1.0, 2.0], [-1.0, 0.0], [3.0, -2.0]], dtype=np.float32)
    # x_hat = [[1, 2], [0, 0], [3, 0]]: squared errors 0, 1, 4; mean x = [1, 0]: total variance 4 + 4 + 8.
    quality = sae_quality(_identity_relu_sae(), x, batch_size=2)
    assert quality.model_dump() == pytest.approx(
        {"fvu": 5 / 16, "l0": 1.0, "dead_fraction": 1 / 3, "mean_l2_error": 1.0, "n_tokens": 3}
    )


def test_tokens_without_variance_have_no_fvu() -> None:
    """FVU is undefined there: None (null in quality.json and the API), not NaN, which JSON cannot carry."""
    x = np.ones((4, 2), dtype=np.float32)
    quality = sae_quality(_identity_relu_sae(), x)
    assert quality.fvu is None and quality.n_tokens == 4
    assert '"fvu":null' in quality.model_dump_json()


def test_quality_of_topk_uses_its_sparse_path() -> None:
    sae = TopKSAE(make_cfg("topk", d_in=2, d_sae=3, k=1))
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        sae.b_enc.copy_(torch.tensor([0.0, 0.0, -10.0]))
        sae.W_dec.copy_(torch.eye(3, 2))
        sae.b_dec.zero_()
    x = torch.tensor([[1.0, 2.0], [3.0, 0.5], [-1.0, -2.0]])
    # top-1 keeps 2, 3 and nothing (all negative): x_hat = [[0, 2], [3, 0], [0, 0]]
    quality = sae_quality(sae, x)
    total = float(((x - x.mean(0)) ** 2).sum())
    assert quality.fvu == pytest.approx((1 + 0.25 + 5) / total)
    assert quality.l0 == pytest.approx(2 / 3)
    assert quality.dead_fraction == pytest.approx(1 / 3)
    assert quality.mean_l2_error == pytest.approx((1 + 0.5 + 5**0.5) / 3)


def test_quality_refuses_mismatched_activations() -> None:
    sae = _identity_relu_sae()
    with pytest.raises(ValueError, match="d_in=2"):
        sae_quality(sae, np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        sae_quality(sae, np.zeros(4, dtype=np.float32))


def test_l1_thresholds_on_a_hand_made_case() -> None:
    sae = TopKSAE(make_cfg("topk", d_in=2, d_sae=2, k=1))
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(2))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    x = torch.tensor([[3.0, 1.0], [2.0, 2.5], [1.0, 0.5], [0.2, 0.1]])
    # feature 0: values 3, 2, 1, 0.2 with TopK firing T, F, T, T: firing on 3 alone misses 1 + 0.2, firing
    # on all adds 2, so the cut is between 3 and 2. Feature 1: values 1, 2.5, 0.5, 0.1 firing F, T, F, F.
    jump = topk_to_jumprelu(sae, x)
    torch.testing.assert_close(jump.threshold.detach(), torch.tensor([2.5, 1.75]))
    stats = jump.cfg.metadata["topk_conversion"]
    assert stats["precision"] == 1.0 and stats["recall"] == 0.5
    min_jump = topk_to_jumprelu(sae, x, method="min")
    assert min_jump.threshold[0] < 0.2 < min_jump.threshold[0] + 1e-6
    assert min_jump.cfg.metadata["topk_conversion"]["recall"] == 1.0


@pytest.fixture(scope="module")
def trained_topk() -> tuple[TopKSAE, np.ndarray]:
    x, _ = planted_data(n=6000, d=32, m=48, active=3, seed=1)
    torch.set_num_threads(1)
    trainer = SAETrainer(d_sae=64, k=3, batch_size=256, n_epochs=20, lr=3e-3).fit(x)
    return trainer.sae_, x


@pytest.mark.parametrize("method", ["l1", "min"])
def test_topk_to_jumprelu_codes_match_topk_on_the_sample(
    method: str, trained_topk: tuple[TopKSAE, np.ndarray]
) -> None:
    sae, x = trained_topk
    jump = topk_to_jumprelu(sae, x, method=method)
    assert isinstance(jump, JumpReLUSAE) and jump.cfg.k is None
    assert jump.cfg.hook_name == sae.cfg.hook_name
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(jump, name), getattr(sae, name))
    stats = jump.cfg.metadata["topk_conversion"]
    xt = torch.from_numpy(x)
    with torch.no_grad():
        f_topk, f_jump = sae.encode(xt), jump.encode(xt)
    both = (f_topk > 0) & (f_jump > 0)
    torch.testing.assert_close(f_jump[both], f_topk[both])  # same value wherever both fire
    if method == "min":
        assert stats["recall"] == 1.0 and ((f_topk > 0) <= (f_jump > 0)).all()
    else:
        assert stats["precision"] > 0.9 and stats["recall"] > 0.85
        # the reconstructions stay close: the disagreements are small activations
        with torch.no_grad():
            err = (jump(xt) - sae(xt)).pow(2).sum() / (sae(xt) - xt.mean(0)).pow(2).sum()
        assert float(err) < 0.1


def test_topk_to_jumprelu_needs_a_topk_sae() -> None:
    with pytest.raises(TypeError, match="needs a TopKSAE, got ReLUSAE"):
        topk_to_jumprelu(_identity_relu_sae(), np.zeros((3, 2), dtype=np.float32))  # type: ignore[arg-type]
