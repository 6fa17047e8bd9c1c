"""The SHIFT edit: exact effect of an ablation, its served form, and save/load round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import DEVICES, make_model_folder
from safetensors.torch import load_file
from torch import nn

import editing_service
from editing_service.edit import FeatureAblation, load_model, retrain_head, save_model
from editing_service.edit.ablation import (
    DUPLICATE_FEATURES,
    FEATURE_OUT_OF_RANGE,
    NO_FEATURES,
    TOPK_NEEDS_THRESHOLDS,
)
from editing_service.edit.io import BASE_CHANGED, NOT_A_MODEL
from editing_service.model import capture, intervene, load_classifier
from editing_service.sae import SAEConfig, get_sae_class, topk_to_jumprelu

CLASSES = ["nurse", "surgeon"]
TEXTS = ["she works as a nurse in the ward", "he is a surgeon", "the hospital team", "a nurse", "he"]
LABELS = np.array([0, 1, 1, 0, 1])


def _sae(architecture: str, seed: int = 0, d_sae: int = 40):
    torch.manual_seed(seed)
    cfg = SAEConfig(architecture=architecture, d_in=32, d_sae=d_sae, k=6 if architecture == "topk" else None)
    sae = get_sae_class(architecture)(cfg)
    with torch.no_grad():
        for name, p in sae.named_parameters():
            if name == "threshold":
                p.fill_(0.05)
            else:
                p.normal_(0, 0.4)
    return sae


@pytest.fixture
def classifier(tmp_path):
    clf = load_classifier(make_model_folder(tmp_path, "bert"), classes=CLASSES)
    torch.manual_seed(1)
    clf.set_head(nn.Linear(32, 2))
    return clf


def _batch(clf):
    return clf.tokenizer(TEXTS, padding=True, return_tensors="pt")


@pytest.mark.parametrize("architecture", ["relu", "jumprelu"])
def test_ablating_features_removes_exactly_their_contribution(classifier, architecture: str) -> None:
    site = classifier.sites()[0]
    sae = _sae(architecture)
    flagged = [1, 5, 7]
    batch = _batch(classifier)
    with torch.no_grad(), capture(classifier.backbone, [site]) as clean:
        classifier(batch["input_ids"], batch["attention_mask"])
    x = clean[site.name]
    f = sae.encode(x)
    expected = x - f[..., flagged] @ sae.W_dec[flagged]
    # Same as the spliced model with those features zeroed and the error term kept:
    f_zeroed = f.clone()
    f_zeroed[..., flagged] = 0
    spliced_form = sae.decode(f_zeroed) + (x - sae.decode(f))
    ablation = FeatureAblation.from_sae(site, sae, flagged)
    with torch.no_grad():
        torch.testing.assert_close(ablation(x), expected)
        torch.testing.assert_close(ablation(x), spliced_form, atol=1e-5, rtol=1e-5)


def test_mean_ablation_replaces_features_by_their_mean(classifier) -> None:
    sae = _sae("relu")
    x = torch.randn(3, 4, 32)
    means = np.array([0.5, 0.25])
    ablation = FeatureAblation.from_sae(classifier.sites()[0], sae, [2, 3], mode="mean", mean=means)
    f = sae.encode(x)[..., [2, 3]]
    expected = x - (f - torch.tensor(means, dtype=torch.float32)) @ sae.W_dec[[2, 3]]
    torch.testing.assert_close(ablation(x), expected)


def test_served_topk_edit_equals_the_training_time_form_and_matches_topk_closely(classifier) -> None:
    site = classifier.sites()[0]
    topk = _sae("topk")
    x = torch.randn(4000, 32) * 2
    with pytest.raises(TypeError) as err:
        FeatureAblation.from_sae(site, topk, [0])
    assert str(err.value) == TOPK_NEEDS_THRESHOLDS.format(site=site.name)
    served = topk_to_jumprelu(topk, x.numpy())
    flagged = [0, 3, 9]
    ablation = FeatureAblation.from_sae(site, served, flagged)
    # The served form is the JumpReLU SAE's own zero-ablation, exactly.
    f = served.encode(x)
    torch.testing.assert_close(ablation(x), x - f[:, flagged] @ served.W_dec[flagged])
    # And close to ablating the TopK features themselves.
    f_topk = topk.encode(x)[:, flagged]
    agree = ((f[:, flagged] > 0) == (f_topk > 0)).float().mean().item()
    assert agree > 0.9


@pytest.mark.parametrize("grad_mode", [torch.no_grad, torch.inference_mode])
def test_edit_in_the_classifier_equals_the_spliced_model_with_features_zeroed(classifier, grad_mode) -> None:
    sites = classifier.sites()
    saes = {site: _sae("jumprelu", seed=i) for i, site in enumerate(sites)}
    flagged = {sites[0]: [2, 4], sites[1]: [0]}
    batch = _batch(classifier)

    def zeroed(sae, features):
        def fn(x):  # the training-time form: x = D(f) + e, with the flagged f zeroed and e kept
            f = sae.encode(x)
            e = x - sae.decode(f)
            f = f.clone()
            f[..., features] = 0
            return sae.decode(f) + e

        return fn

    with grad_mode():
        with intervene(classifier.backbone, {s: zeroed(saes[s], f) for s, f in flagged.items()}):
            reference = classifier(batch["input_ids"], batch["attention_mask"])
        classifier.set_interventions([FeatureAblation.from_sae(s, saes[s], f) for s, f in flagged.items()])
        edited = classifier(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(edited, reference, atol=1e-5, rtol=1e-5)
    classifier.set_interventions([])
    with torch.no_grad():
        assert not torch.allclose(classifier(batch["input_ids"], batch["attention_mask"]), edited)


@pytest.mark.parametrize("thresholds", ["jumprelu", "relu", "mixed", "negative"])
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_in_place_served_form_equals_the_literal_edit(classifier, thresholds: str, mode: str) -> None:
    sae = _sae("relu" if thresholds == "relu" else "jumprelu")
    with torch.no_grad():
        if thresholds == "mixed":
            sae.threshold[::2] = 0.0
        if thresholds == "negative":  # acts as 0, as in the SAE's own encode
            sae.threshold[::3] = -0.5
    features = [1, 5, 7, 11, 20]  # 5 features: the computing form pads them to 16
    means = np.linspace(0.1, 0.5, 5) if mode == "mean" else None
    ablation = FeatureAblation.from_sae(classifier.sites()[0], sae, features, mode=mode, mean=means)
    x = torch.randn(3, 9, 32)
    kept = x.clone()
    a = torch.zeros(5) if means is None else torch.tensor(means, dtype=torch.float32)
    by_hand = x - (sae.encode(x)[..., features] - a) @ sae.W_dec[features]
    literal = ablation(x)
    torch.testing.assert_close(literal, by_hand)
    assert torch.equal(x, kept)  # forward never writes into its input
    outside = ablation.rewrite_(x)  # outside inference mode: the literal form, input untouched
    assert torch.equal(x, kept) and torch.equal(outside, literal)
    with torch.inference_mode():
        y = x.clone()
        rewritten = ablation.rewrite_(y)
    assert rewritten.data_ptr() == y.data_ptr()
    torch.testing.assert_close(rewritten, literal, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_an_ablation_lives_on_its_saes_device(classifier, device: str, mode: str) -> None:
    # Regression: a zero-mode ablation made its (unused) mean on the CPU whatever the SAE's device, and
    # building the served edit of a run on a GPU failed ("Expected all tensors to be on the same device").
    sae = _sae("jumprelu").to(device)
    means = np.linspace(0.1, 0.3, 3) if mode == "mean" else None
    ablation = FeatureAblation.from_sae(classifier.sites()[0], sae, [1, 5, 7], mode=mode, mean=means)
    assert {t.device.type for t in ablation.buffers()} == {device}
    x = torch.randn(2, 4, 32, device=device)
    with torch.inference_mode():
        rewritten = ablation.rewrite_(x.clone())
    torch.testing.assert_close(rewritten, ablation(x), atol=1e-5, rtol=1e-5)


def test_edits_belong_to_the_model_and_are_replaced_not_stacked(classifier) -> None:
    site = classifier.sites()[0]
    ablation = FeatureAblation.from_sae(site, _sae("jumprelu"), [2, 4, 6, 9])
    batch = _batch(classifier)
    with torch.inference_mode():
        with capture(classifier.backbone, [site]) as clean:
            original = classifier(batch["input_ids"], batch["attention_mask"])
        classifier.set_interventions([ablation])
        with capture(classifier.backbone, [site]) as seen:
            edited = classifier(batch["input_ids"], batch["attention_mask"])
        # whatever reads the site sees the edited output
        torch.testing.assert_close(seen[site.name], ablation(clean[site.name]), atol=1e-5, rtol=1e-5)
        classifier.set_interventions([ablation])
        assert torch.equal(classifier(batch["input_ids"], batch["attention_mask"]), edited)
        classifier.set_interventions([])
        assert torch.equal(classifier(batch["input_ids"], batch["attention_mask"]), original)
    assert not torch.allclose(edited, original)


@pytest.mark.parametrize("copy_base", [False, True])
def test_save_and_load_give_identical_predictions(classifier, tmp_path, copy_base: bool) -> None:
    sites = classifier.sites()
    sae = _sae("jumprelu")
    classifier.set_interventions([FeatureAblation.from_sae(sites[1], sae, [3, 8])])
    retrain_head(classifier, TEXTS, LABELS, batch_size=2)
    folder = save_model(classifier, tmp_path / "edited", copy_base=copy_base, provenance={"note": "test"})
    assert set(load_file(folder / "edits.safetensors")) == {f"edit0.{name}" for name in FeatureAblation.TENSORS}
    loaded = editing_service.load_model(folder)
    assert loaded.classes == CLASSES and len(loaded.interventions) == 1
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), classifier.predict_proba(TEXTS))
    assert loaded.predict(TEXTS) == classifier.predict(TEXTS)


def test_original_classifier_round_trips_too(classifier, tmp_path) -> None:
    folder = save_model(classifier, tmp_path / "original")
    np.testing.assert_array_equal(load_model(folder).predict_proba(TEXTS), classifier.predict_proba(TEXTS))


def test_changed_base_model_and_foreign_folders_are_refused(classifier, tmp_path) -> None:
    folder = save_model(classifier, tmp_path / "m")
    base = classifier.source.path
    torch.manual_seed(5)
    other = load_classifier(make_model_folder(tmp_path / "other", "bert", seed=5), classes=CLASSES)
    other.backbone.save_pretrained(base, safe_serialization=True)
    with pytest.raises(ValueError) as err:
        load_model(folder)
    assert str(err.value).startswith(BASE_CHANGED.split("{found}")[0].format(path=base))
    with pytest.raises(ValueError) as err:
        load_model(tmp_path / "other" / "bert")
    assert str(err.value) == NOT_A_MODEL.format(path=tmp_path / "other" / "bert",
                                                format="editing-service/classifier")


def test_bad_feature_lists_are_refused(classifier) -> None:
    site = classifier.sites()[0]
    sae = _sae("relu")
    with pytest.raises(ValueError) as err:
        FeatureAblation.from_sae(site, sae, [])
    assert str(err.value) == NO_FEATURES.format(site=site.name)
    with pytest.raises(ValueError) as err:
        FeatureAblation.from_sae(site, sae, [40])
    assert str(err.value) == FEATURE_OUT_OF_RANGE.format(feature=40, site=site.name, d_sae=40, last=39)
    with pytest.raises(ValueError) as err:
        FeatureAblation.from_sae(site, sae, [2, 2])
    assert str(err.value) == DUPLICATE_FEATURES.format(features=[2], site=site.name)
