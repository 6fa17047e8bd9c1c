"""The served edit's folded computing form against the literal edit: the ablation alone, and the ablation
with the LEACE eraser after it fused into one form, for every kind of cut (JumpReLU, ReLU, mixed
thresholds, the TopK gate whatever the sign of its norm term) and both ablation modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import make_model_folder
from torch import nn

from editing_service.edit import FeatureAblation
from editing_service.edit.ablation import ErasedAblation
from editing_service.edit.computing_form import ComputingForm
from editing_service.edit.erasure import ConceptErasure
from editing_service.model import capture, load_classifier
from editing_service.model.sites import Site
from editing_service.sae import SAEConfig, TopKGate, get_sae_class

SITE = Site("blocks.0.out", 0, "block", "encoder.layer.0")
FEATURES = [1, 5, 7, 11, 20, 33]
CUTS = ["jumprelu", "relu", "mixed", "gate+", "gate-", "gate0"]


def _ablation(cut: str, mode: str, site: Site = SITE) -> FeatureAblation:
    architecture = {"jumprelu": "jumprelu", "mixed": "jumprelu", "relu": "relu"}.get(cut, "topk")
    torch.manual_seed(0)
    sae = get_sae_class(architecture)(SAEConfig(architecture=architecture, d_in=32, d_sae=40,
                                                k=6 if architecture == "topk" else None))
    with torch.no_grad():
        for name, p in sae.named_parameters():
            p.copy_(torch.randn_like(p) * 0.3 if name != "threshold" else torch.full_like(p, 0.2))
        if cut == "mixed":
            sae.threshold[::2] = 0.0
    gate = None
    if cut.startswith("gate"):
        norm = {"gate+": 0.15, "gate-": -0.1, "gate0": 0.0}[cut]
        gate = TopKGate(weight=torch.randn(32) * 0.05, norm=norm, bias=0.1, offset=torch.randn(40) * 0.2)
    means = np.linspace(0.1, 0.6, len(FEATURES)) if mode == "mean" else None
    return FeatureAblation.from_sae(site, sae, FEATURES, mode=mode, mean=means, gate=gate)


def _eraser(site: Site = SITE) -> ConceptErasure:
    torch.manual_seed(1)
    return ConceptErasure(site, proj_left=torch.randn(32, 1) * 0.2, proj_right=torch.randn(1, 32) * 0.2,
                          bias=torch.randn(32))


def _in_place(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        y = x.clone()
        out = module.rewrite_(y)
    assert out.data_ptr() == y.data_ptr()
    return out


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_the_ablations_folded_form_equals_the_literal_one(cut: str, mode: str) -> None:
    ablation = _ablation(cut, mode)
    x = torch.randn(3, 9, 32)
    literal = ablation(x)
    assert 0 < int((ablation.activations(x) > 0).sum()) < x.shape[0] * x.shape[1] * len(FEATURES)  # cuts bite
    torch.testing.assert_close(_in_place(ablation, x), literal, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_an_ablation_and_the_eraser_after_it_fuse_into_one_exact_form(cut: str, mode: str) -> None:
    ablation, eraser = _ablation(cut, mode), _eraser()
    fused = ablation.fused_with(eraser)
    assert isinstance(fused, ErasedAblation)
    x = torch.randn(4, 7, 32)
    literal = eraser(ablation(x))
    torch.testing.assert_close(fused(x), literal)
    torch.testing.assert_close(_in_place(fused, x), literal, atol=1e-5, rtol=1e-5)
    assert not list(fused.state_dict())  # nothing of its own is saved


def test_only_an_eraser_at_the_same_site_is_fused() -> None:
    ablation = _ablation("jumprelu", "zero")
    elsewhere = ConceptErasure(Site("blocks.1.out", 1, "block", "encoder.layer.1"), proj_left=torch.randn(32, 1),
                               proj_right=torch.randn(1, 32), bias=torch.zeros(32))
    assert ablation.fused_with(elsewhere) is None
    assert ablation.fused_with(_ablation("relu", "zero")) is None
    assert _eraser().fused_with(ablation) is None  # the eraser runs after the ablation, not before


def test_the_classifier_hooks_the_fused_form_and_its_output_is_the_literal_chain(tmp_path) -> None:
    classifier = load_classifier(make_model_folder(tmp_path, "bert"), classes=["nurse", "surgeon"])
    classifier.set_head(nn.Linear(32, 2))
    site = classifier.sites()[0]
    ablation, eraser = _ablation("gate+", "mean", site), _eraser(site)
    batch = classifier.tokenizer(["she is a nurse", "he is a surgeon at the clinic"], padding=True,
                                 return_tensors="pt")
    with torch.inference_mode(), capture(classifier.backbone, [site]) as raw:
        classifier(batch["input_ids"], batch["attention_mask"])
    classifier.set_interventions([ablation, eraser])
    assert [type(m).__name__ for m in classifier._fused_interventions] == ["ErasedAblation"]
    assert [type(m).__name__ for m in classifier.interventions] == ["FeatureAblation", "ConceptErasure"]
    with torch.inference_mode(), capture(classifier.backbone, [site]) as edited:
        classifier(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(edited[site.name], eraser(ablation(raw[site.name])), atol=1e-5, rtol=1e-5)
    classifier.set_interventions([])
    assert not list(classifier._fused_interventions)


def test_a_decoder_runs_the_folded_form_past_its_sink_token(tmp_path, monkeypatch) -> None:
    # Regression: past the decoder's first token the hook handed the edit a strided view, so the served
    # edit always fell back to the literal, out-of-place form.
    classifier = load_classifier(make_model_folder(tmp_path, "llama"), classes=["nurse", "surgeon"])
    classifier.set_head(nn.Linear(32, 2))
    site = classifier.resolve_sites(["blocks.0.out"])[0]
    ablation, eraser = _ablation("gate+", "zero", site), _eraser(site)
    batch = classifier.tokenizer(["she is a nurse", "he is a surgeon at the clinic"], padding=True,
                                 return_tensors="pt")
    with torch.inference_mode(), capture(classifier.backbone, [site]) as raw:
        classifier(batch["input_ids"], batch["attention_mask"])
    calls = []
    folded = ComputingForm.rewrite_
    monkeypatch.setattr(ComputingForm, "rewrite_", lambda self, x: calls.append(x.shape) or folded(self, x))
    classifier.set_interventions([ablation, eraser])
    with torch.inference_mode(), capture(classifier.backbone, [site]) as edited:
        classifier(batch["input_ids"], batch["attention_mask"])
    assert calls, "the served edit did not run its computing form"
    torch.testing.assert_close(edited[site.name][:, 0], raw[site.name][:, 0], rtol=0, atol=0)
    torch.testing.assert_close(edited[site.name][:, 1:], eraser(ablation(raw[site.name][:, 1:])), atol=1e-5, rtol=1e-5)
