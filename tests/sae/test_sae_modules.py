"""SAE modules: shapes, encode/decode semantics, the sparse TopK path, folding, config and registry."""

from __future__ import annotations

import copy

import pytest
import torch
from sae_factories import ARCHITECTURES, batch_top_k, make_cfg, make_sae

from editing_service.sae import SAE, SAEConfig, TopKSAE, get_sae_class, known_architectures, register_sae
from editing_service.sae.base import TrainContext


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_parameters_have_saelens_names_and_shapes(arch: str) -> None:
    sae = make_sae(arch, d_in=8, d_sae=16)
    shapes = {name: tuple(p.shape) for name, p in sae.named_parameters()}
    expected = {"W_enc": (8, 16), "b_enc": (16,), "W_dec": (16, 8), "b_dec": (8,)}
    if arch == "jumprelu":
        expected["threshold"] = (16,)
    assert shapes == expected


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_encode_decode_shapes_and_forward_order(arch: str) -> None:
    sae = make_sae(arch)
    x = torch.randn(2, 5, 8)
    f = sae.encode(x)
    assert f.shape == (2, 5, 16)
    assert (f >= 0).all()
    assert sae.decode(f).shape == (2, 5, 8)
    torch.testing.assert_close(sae(x), sae.decode(sae.encode(x)))


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_encode_matches_the_formula(arch: str) -> None:
    sae = make_sae(arch)
    x = torch.randn(20, 8)
    z = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    if arch == "relu":
        expected = z.relu()
    elif arch in ("jumprelu", "batchtopk"):  # batchtopk at inference: one calibrated threshold
        expected = z * (z > sae.threshold)
    else:
        top = z.topk(3, dim=1)
        expected = torch.zeros_like(z).scatter(1, top.indices, top.values.relu())
    torch.testing.assert_close(sae.encode(x), expected)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_encode_columns_are_those_columns_of_the_code(arch: str) -> None:
    sae = make_sae(arch, d_in=8, d_sae=16)
    x = torch.randn(2, 5, 8)
    columns = torch.tensor([13, 2, 7, 8])  # any order
    got = sae.encode_columns(x, columns)
    assert got.shape == (2, 5, 4)
    torch.testing.assert_close(got, sae.encode(x)[..., columns])
    assert ((got > 0) == (sae.encode(x)[..., columns] > 0)).all()  # the same firings, not just close values


def test_topk_keeps_exactly_k_largest_and_sparse_path_matches_dense() -> None:
    sae = make_sae("topk", d_in=8, d_sae=32, k=5)
    with torch.no_grad():
        sae.b_enc.fill_(10.0)  # every pre-activation positive: exactly k active
    x = torch.randn(40, 8)
    f = sae.encode(x)
    assert ((f > 0).sum(-1) == 5).all()
    values, indices = sae.encode_topk(x)
    assert values.shape == indices.shape == (40, 5)
    torch.testing.assert_close(sae.decode_sparse(values, indices), sae.decode(f))


def test_topk_sparse_backward_matches_dense_autograd() -> None:
    sae = make_sae("topk", d_in=6, d_sae=24, k=4, dtype="float64")
    x = torch.randn(30, 6, dtype=torch.float64, requires_grad=True)
    weights = torch.arange(6, dtype=torch.float64)
    values, indices = sae.encode_topk(x)
    loss = (sae.decode_sparse(values, indices).pow(2) * weights).sum() + values.pow(3).sum()
    fast = torch.autograd.grad(loss, [x, *sae.parameters()])

    z = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    vals = z.gather(1, indices).relu()
    f = torch.zeros_like(z).scatter(1, indices, vals)
    ref_loss = ((f @ sae.W_dec + sae.b_dec).pow(2) * weights).sum() + vals.pow(3).sum()
    ref = torch.autograd.grad(ref_loss, [x, *sae.parameters()])
    for got, want in zip(fast, ref, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("n_dead", [3, 12])  # dense path (n_dead <= aux_k) and sparse path
def test_topk_aux_loss_trains_only_dead_features(n_dead: int) -> None:
    sae = make_sae("topk", d_in=8, d_sae=24, k=2)
    x = torch.randn(64, 8)
    dead = torch.arange(24 - n_dead, 24)
    grads = []
    for ctx in (TrainContext(), TrainContext(dead_features=dead, aux_k=5, aux_coefficient=1.0)):
        sae.zero_grad()
        out = sae.training_loss(x, ctx)
        out.loss.backward()
        grads.append(sae.W_dec.grad.clone())
    assert out.aux > 0
    changed = ((grads[1] - grads[0]).abs().sum(1) > 0).nonzero().squeeze(1)
    assert len(changed) > 0
    assert set(changed.tolist()) <= set(dead.tolist())


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_training_loss_reports_statistics(arch: str) -> None:
    sae = make_sae(arch)
    x = torch.randn(32, 8)
    out = sae.training_loss(x, TrainContext())
    out.loss.backward()
    assert out.loss.ndim == 0 and out.fired.shape == (16,)
    ref = copy.deepcopy(sae)  # TopK trains through decoder directions: its plain twin has unit-norm rows
    ref.fold_decoder_norm_()
    with torch.no_grad():
        f = batch_top_k(ref, x) if arch == "batchtopk" else ref.encode(x)  # training selects over the batch
        torch.testing.assert_close(out.mse, (ref.decode(f) - x).pow(2).sum(-1).mean(), rtol=1e-4, atol=1e-4)
        assert float(out.l0) == pytest.approx(float((f > 0).sum(-1).float().mean()), abs=1e-4)
    assert all(p.grad is not None for p in sae.parameters())


@pytest.mark.parametrize("arch", ["relu", "jumprelu"])
def test_fold_decoder_norm_keeps_the_function(arch: str) -> None:
    sae = make_sae(arch)
    folded = copy.deepcopy(sae)
    folded.fold_decoder_norm_()
    x = torch.randn(50, 8)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), sae(x))
        torch.testing.assert_close(folded.W_dec.norm(dim=1), torch.ones(16))


def test_topk_training_loss_depends_on_decoder_directions_only() -> None:
    # Training multiplies z_i by ||W_dec[i]|| and divides f_i by it: moving a per-feature gain c_i from
    # the encoder into the decoder row's norm changes nothing.
    sae = make_sae("topk", d_in=8, d_sae=24, k=3)
    x = torch.randn(40, 8)
    scaled = copy.deepcopy(sae)
    gain = torch.rand(24) * 3 + 0.1
    with torch.no_grad():
        scaled.W_dec.mul_(gain[:, None])
        scaled.W_enc.div_(gain)
        scaled.b_enc.div_(gain)
    torch.testing.assert_close(
        scaled.training_loss(x, TrainContext()).mse, sae.training_loss(x, TrainContext()).mse
    )


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_fold_input_scale_gives_raw_reconstruction(arch: str) -> None:
    trained = make_sae(arch)
    folded = make_sae(arch)
    scale = 3.7
    folded.fold_input_scale_(scale)
    x = torch.randn(50, 8)
    torch.testing.assert_close(folded(x), trained(x * scale) / scale)
    torch.testing.assert_close(folded.encode(x), trained.encode(x * scale) / scale)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_wrong_width_is_refused(arch: str) -> None:
    sae = make_sae(arch)
    with pytest.raises(ValueError, match=r"last dimension is d_in=8, got shape \(4, 7\)"):
        sae.encode(torch.randn(4, 7))
    with pytest.raises(ValueError, match="d_in=8"):
        sae(torch.tensor(1.0))


def test_forward_returns_the_input_dtype() -> None:
    sae = make_sae("topk")
    assert sae(torch.randn(3, 8, dtype=torch.float64)).dtype == torch.float64
    assert sae.encode(torch.randn(3, 8, dtype=torch.float64)).dtype == torch.float32


def test_to_keeps_config_device_and_dtype_current() -> None:
    sae = make_sae("relu").to(torch.float64)
    assert sae.cfg.dtype == "float64" and sae.W_enc.dtype == torch.float64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"architecture": "topk", "k": 17}, r"1 <= k <= d_sae \(16\), got 17"),
        ({"architecture": "topk", "k": None}, r"1 <= k <= d_sae \(16\), got None"),
        ({"architecture": "relu", "k": 3}, "only used by the batchtopk and topk architectures"),
        (
            {"architecture": "gated"},
            r"unknown SAE architecture 'gated'; known architectures: \['batchtopk', 'jumprelu', 'relu', 'topk'\]",
        ),
        ({"architecture": "relu", "dtype": "int8"}, "unknown dtype 'int8'"),
        ({"architecture": "relu", "metadata": {"hook_name": "x"}}, "reserved key"),
        ({"architecture": "relu", "l1_coefficient": -1.0}, "l1_coefficient must be >= 0"),
    ],
)
def test_config_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SAEConfig(d_in=8, d_sae=16, **kwargs)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_config_dict_round_trip(arch: str) -> None:
    cfg = make_cfg(arch, hook_name="blocks.0.out", model_name="tiny", metadata={"note": [1, 2]})
    data = cfg.to_dict()
    assert data["architecture"] == arch
    assert SAEConfig.from_dict(data) == cfg
    with pytest.raises(ValueError, match=r"unknown SAEConfig field\(s\): \['bogus'\]"):
        SAEConfig.from_dict({**data, "bogus": 1})


def test_config_accepts_torch_dtype_names() -> None:
    assert make_cfg("relu", dtype="torch.bfloat16").torch_dtype == torch.bfloat16


def test_registry_refuses_duplicates_and_names_known_architectures() -> None:
    assert known_architectures() == ("batchtopk", "jumprelu", "relu", "topk")
    assert get_sae_class("topk") is TopKSAE
    with pytest.raises(ValueError, match="already registered for architecture 'topk'"):
        register_sae("topk", TopKSAE)
    with pytest.raises(ValueError, match="known architectures"):
        get_sae_class("nope")


def test_module_refuses_a_config_of_another_architecture() -> None:
    with pytest.raises(ValueError, match="needs architecture 'topk'"):
        TopKSAE(make_cfg("relu"))
    assert issubclass(TopKSAE, SAE)
