"""SAELens-layout io: exact round trips, the cfg.json we write, and hand-written SAELens folders."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from sae_factories import ARCHITECTURES, make_sae
from safetensors import safe_open
from safetensors.torch import save_file

from editing_service.sae import JumpReLUSAE, ReLUSAE, TopKSAE, load_sae, sae_digest, save_sae
from editing_service.sae.io import CFG_FILENAME, WEIGHTS_FILENAME


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_save_load_round_trip_is_exact(arch: str, tmp_path: Path) -> None:
    trained = make_sae(arch, hook_name="blocks.2.out", model_name="tiny-bert")
    trained.cfg.metadata.update({"input_scale": 0.123456789, "notes": {"a": [1, 2]}})
    save_sae(trained, tmp_path / "sae")
    sae = trained.inference_form()  # what is saved: BatchTopK as the JumpReLU SAE it serves
    loaded = load_sae(tmp_path / "sae")
    assert type(loaded) is type(sae)
    assert loaded.cfg == sae.cfg
    for (name, p), (name2, q) in zip(sae.named_parameters(), loaded.named_parameters(), strict=True):
        assert name == name2
        assert torch.equal(p, q)
    save_sae(loaded, tmp_path / "again")
    assert (tmp_path / "sae" / CFG_FILENAME).read_text() == (tmp_path / "again" / CFG_FILENAME).read_text()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_cfg_json_carries_the_saelens_fields(arch: str, tmp_path: Path) -> None:
    save_sae(make_sae(arch, hook_name="blocks.0.out", model_name="m"), tmp_path)
    cfg = json.loads((tmp_path / CFG_FILENAME).read_text())
    assert cfg["architecture"] == {"relu": "standard", "batchtopk": "jumprelu"}.get(arch, arch)
    assert (cfg["d_in"], cfg["d_sae"], cfg["dtype"], cfg["device"]) == (8, 16, "float32", "cpu")
    assert cfg["apply_b_dec_to_input"] is True
    assert cfg["normalize_activations"] == "none" and cfg["reshape_activations"] == "none"
    assert cfg["metadata"]["hook_name"] == "blocks.0.out" and cfg["metadata"]["model_name"] == "m"
    assert int(cfg["metadata"]["sae_lens_version"].split(".")[0]) >= 6
    if arch == "topk":
        assert cfg["k"] == 3 and cfg["rescale_acts_by_decoder_norm"] is False
    with safe_open(str(tmp_path / WEIGHTS_FILENAME), framework="pt") as f:
        keys = set(f.keys())
    assert keys == {"W_enc", "b_enc", "W_dec", "b_dec"} | ({"threshold"} if arch in ("jumprelu", "batchtopk") else set())


def _write_folder(path: Path, cfg: dict, tensors: dict[str, torch.Tensor]) -> Path:
    path.mkdir(parents=True)
    (path / CFG_FILENAME).write_text(json.dumps(cfg))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / WEIGHTS_FILENAME))
    return path


def _random_weights(d_in: int = 6, d_sae: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "W_enc": torch.randn(d_in, d_sae, generator=g),
        "b_enc": 0.1 * torch.randn(d_sae, generator=g),
        "W_dec": torch.randn(d_sae, d_in, generator=g),  # rows deliberately not unit norm
        "b_dec": torch.randn(d_in, generator=g),
    }


SAELENS_V6_META = {
    "sae_lens_version": "6.5.1",
    "sae_lens_training_version": "6.5.1",
    "model_name": "gpt2",
    "hook_name": "blocks.3.hook_resid_post",
    "context_size": 128,
    "prepend_bos": True,
}


def test_loads_a_saelens_v6_topk_folder_with_decoder_norm_rescaling(tmp_path: Path) -> None:
    w = _random_weights()
    cfg = {
        "d_in": 6,
        "d_sae": 12,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": SAELENS_V6_META,
        "k": 4,
        "rescale_acts_by_decoder_norm": True,
        "architecture": "topk",
    }
    sae = load_sae(_write_folder(tmp_path / "topk", cfg, w))
    assert isinstance(sae, TopKSAE) and sae.cfg.k == 4
    assert sae.cfg.hook_name == "blocks.3.hook_resid_post" and sae.cfg.model_name == "gpt2"
    assert sae.cfg.metadata == {"context_size": 128, "prepend_bos": True}
    # SAELens semantics: hidden_pre * ||W_dec||, top-k, then acts / ||W_dec|| decoded.
    x = torch.randn(20, 6)
    norms = w["W_dec"].norm(dim=1)
    hidden = ((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]) * norms
    top = hidden.topk(4, dim=1)
    acts = torch.zeros_like(hidden).scatter(1, top.indices, top.values.relu())
    torch.testing.assert_close(sae.encode(x), acts, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae(x), (acts / norms) @ w["W_dec"] + w["b_dec"], rtol=1e-5, atol=1e-5)


def test_loads_a_pre_6_standard_folder_without_b_dec_on_input(tmp_path: Path) -> None:
    w = _random_weights(seed=1)
    cfg = {
        "model_name": "gpt2-small",
        "hook_point": "blocks.0.hook_resid_pre",
        "hook_point_layer": 0,
        "d_in": 6,
        "d_sae": 12,
        "dtype": "torch.float32",
        "device": "cuda",
        "context_size": 128,
        "activation_fn_str": "relu",
        "apply_b_dec_to_input": False,
        "normalize_activations": False,
        "finetuning_scaling_factor": False,
        "l1_coefficient": 8e-5,
    }
    sae = load_sae(_write_folder(tmp_path / "old", cfg, w), device="cpu")
    assert isinstance(sae, ReLUSAE)
    assert sae.cfg.hook_name == "blocks.0.hook_resid_pre" and sae.cfg.device == "cpu"
    assert sae.cfg.l1_coefficient == 8e-5
    assert sae.cfg.metadata["context_size"] == 128 and sae.cfg.metadata["hook_point_layer"] == 0
    x = torch.randn(20, 6)
    f = (x @ w["W_enc"] + w["b_enc"]).relu()
    torch.testing.assert_close(sae.encode(x), f, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae(x), f @ w["W_dec"] + w["b_dec"], rtol=1e-5, atol=1e-5)


def test_loads_a_pre_6_topk_folder_from_activation_fn_kwargs(tmp_path: Path) -> None:
    cfg = {
        "d_in": 6,
        "d_sae": 12,
        "dtype": "float32",
        "activation_fn_str": "topk",
        "activation_fn_kwargs": {"k": 5},
        "hook_point": "blocks.1.hook_resid_post",
    }
    sae = load_sae(_write_folder(tmp_path / "old_topk", cfg, _random_weights()))
    assert isinstance(sae, TopKSAE) and sae.cfg.k == 5


def test_loads_a_saelens_jumprelu_folder(tmp_path: Path) -> None:
    w = _random_weights(seed=2) | {"threshold": torch.rand(12)}
    cfg = {
        "d_in": 6,
        "d_sae": 12,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": SAELENS_V6_META,
        "architecture": "jumprelu",
    }
    sae = load_sae(_write_folder(tmp_path / "jr", cfg, w))
    assert isinstance(sae, JumpReLUSAE)
    x = torch.randn(20, 6)
    z = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    torch.testing.assert_close(sae.encode(x), z.relu() * (z > w["threshold"]))


def test_folds_a_finetuning_scaling_factor(tmp_path: Path) -> None:
    w = _random_weights(seed=3)
    scaling = torch.rand(12) + 0.5
    cfg = {
        "d_in": 6,
        "d_sae": 12,
        "dtype": "float32",
        "architecture": "standard",
        "metadata": SAELENS_V6_META,
        "normalize_activations": "none",
    }
    sae = load_sae(_write_folder(tmp_path / "ft", cfg, w | {"scaling_factor": scaling}))
    x = torch.randn(20, 6)
    f = ((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]).relu()
    torch.testing.assert_close(sae(x), (f * scaling) @ w["W_dec"] + w["b_dec"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"normalize_activations": "expected_average_only_in"},
            "normalize_activations='expected_average_only_in' is not supported",
        ),
        ({"normalize_activations": "layer_norm"}, "fold_activation_norm_scaling_factor"),
        ({"reshape_activations": "hook_z"}, "reshape_activations='hook_z' is not supported"),
        (
            {"architecture": "gated"},
            r"unknown SAE architecture 'gated'; known architectures: \['batchtopk', 'jumprelu', 'relu', 'topk'\]",
        ),
        ({"d_sae": 13}, r"tensor W_enc has shape \(6, 12\), expected \(6, 13\)"),
    ],
)
def test_refuses_folders_it_cannot_serve_faithfully(changes: dict, message: str, tmp_path: Path) -> None:
    cfg = {
        "d_in": 6,
        "d_sae": 12,
        "dtype": "float32",
        "architecture": "standard",
        "metadata": SAELENS_V6_META,
        "normalize_activations": "none",
    } | changes
    folder = _write_folder(tmp_path / "bad", cfg, _random_weights())
    with pytest.raises(ValueError, match=message):
        load_sae(folder)


def test_missing_tensor_is_named(tmp_path: Path) -> None:
    cfg = {
        "d_in": 6,
        "d_sae": 12,
        "dtype": "float32",
        "architecture": "jumprelu",
        "metadata": SAELENS_V6_META,
    }
    with pytest.raises(ValueError, match=r"missing tensor\(s\) \['threshold'\]"):
        load_sae(_write_folder(tmp_path / "jr", cfg, _random_weights()))


def test_missing_sizes_are_named(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "x", {"architecture": "topk", "k": 2, "d_in": 6}, _random_weights())
    with pytest.raises(ValueError, match=r"lacks the required field\(s\) \['d_sae'\]"):
        load_sae(folder)


def test_load_overrides_dtype(tmp_path: Path) -> None:
    save_sae(make_sae("topk"), tmp_path)
    sae = load_sae(tmp_path, dtype="float64")
    assert sae.W_enc.dtype == torch.float64 and sae.cfg.dtype == "float64"


def test_the_digest_names_what_the_sae_computes(tmp_path: Path) -> None:
    sae = make_sae("topk", hook_name="blocks.0.out", model_name="m")
    digest = sae_digest(save_sae(sae, tmp_path / "a"))
    assert len(digest) == 64 and digest == hashlib.sha256(
        json.dumps({k: v for k, v in json.loads((tmp_path / "a" / CFG_FILENAME).read_text()).items()
                    if k not in ("device", "metadata")}, sort_keys=True).encode()
        + (tmp_path / "a" / WEIGHTS_FILENAME).read_bytes()).hexdigest()
    sae.cfg.metadata["final_fvu_train"] = 0.5  # training notes do not change what it computes
    assert sae_digest(save_sae(sae, tmp_path / "b")) == digest
    with torch.no_grad():
        sae.W_dec[0, 0] += 1e-6
    assert sae_digest(save_sae(sae, tmp_path / "c")) != digest
