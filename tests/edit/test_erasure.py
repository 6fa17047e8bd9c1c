"""LEACE at a site: the protected groups' token means become equal, in place and saved forms agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import make_model_folder
from sklearn.linear_model import LogisticRegression
from torch import nn

from editing_service.edit import FeatureAblation, load_model, save_model
from editing_service.edit.erasure import EMPTY_CELL, ConceptErasure, balanced_rows, fit_site_erasers
from editing_service.model import capture, load_classifier
from editing_service.sae import SAEConfig, get_sae_class

CLASSES = ["nurse", "surgeon"]
WORDS = "works as a nurse surgeon in the ward hospital team with patients care trauma heart".split()


def _texts(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts whose group shows in pronouns, labels independent of group within the data."""
    rng = np.random.default_rng(seed)
    texts, labels, groups = [], [], []
    for i in range(n):
        group = "F" if i % 2 else "M"
        label = (i // 2) % 2
        pronoun = rng.choice(["she her", "her", "she"] if group == "F" else ["he his", "his", "he him"])
        body = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 8))))
        texts.append(f"{pronoun} {CLASSES[label]} {body}")
        labels.append(label)
        groups.append(group)
    return texts, np.array(labels), np.array(groups)


@pytest.fixture
def classifier(tmp_path):
    clf = load_classifier(make_model_folder(tmp_path, "bert"), classes=CLASSES)
    torch.manual_seed(1)
    clf.set_head(nn.Linear(32, 2))
    return clf


def _tokens(clf, site, texts, groups):
    batch = clf.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode(), capture(clf.backbone, [site]) as store:
        clf(batch["input_ids"], batch["attention_mask"])
    mask = batch["attention_mask"].bool()
    token_groups = np.repeat(groups[:, None], mask.shape[1], 1)[mask.numpy()]
    return store[site.name][mask].double().numpy(), token_groups


def test_after_erasure_the_groups_token_means_are_equal_and_a_probe_is_near_chance(classifier) -> None:
    texts, labels, groups = _texts(64)
    site = classifier.sites()[0]
    before, token_groups = _tokens(classifier, site, texts, groups)
    probe = LogisticRegression(max_iter=2000)
    majority = max(np.mean(token_groups == "F"), np.mean(token_groups == "M"))
    assert probe.fit(before, token_groups).score(before, token_groups) > majority + 0.05  # decodable
    [eraser] = fit_site_erasers(classifier, [site], texts, labels=labels, groups=groups, attribute="gender")
    assert eraser.rank == 1
    classifier.set_interventions([eraser])
    after, _ = _tokens(classifier, site, texts, groups)
    gap = after[token_groups == "F"].mean(0) - after[token_groups == "M"].mean(0)
    assert np.abs(gap).max() < 1e-4 * np.abs(after).mean()
    assert probe.fit(after, token_groups).score(after, token_groups) <= majority + 0.02
    gap_before = before[token_groups == "F"].mean(0) - before[token_groups == "M"].mean(0)
    assert np.abs(gap_before).max() > 0.05



def test_erasers_at_several_sites_are_fitted_with_the_earlier_ones_in_place(classifier) -> None:
    """Served together, the erasers leave equal group means at every site, the last included: each is
    fitted on what the earlier erasers leave, not on the unerased activations."""
    texts, labels, groups = _texts(64)
    sites = classifier.sites()[:3]
    erasers = fit_site_erasers(classifier, sites[::-1], texts, labels=labels, groups=groups, attribute="gender")
    assert [e.site for e in erasers] == sites[::-1] and len(classifier.interventions) == 0
    classifier.set_interventions(erasers[::-1])
    for site in sites:
        after, token_groups = _tokens(classifier, site, texts, groups)
        gap = after[token_groups == "F"].mean(0) - after[token_groups == "M"].mean(0)
        assert np.abs(gap).max() < 1e-4 * np.abs(after).mean(), site.name

def test_in_place_form_equals_the_literal_eraser(classifier) -> None:
    site = classifier.sites()[0]
    torch.manual_seed(0)
    left, right = torch.randn(32, 1), torch.randn(1, 32)
    eraser = ConceptErasure(site, proj_left=left, proj_right=right, bias=torch.randn(32))
    x = torch.randn(3, 5, 32)
    expected = x - ((x - eraser.bias) @ right.T) @ left.T
    torch.testing.assert_close(eraser(x), expected)
    with torch.inference_mode():
        torch.testing.assert_close(eraser.rewrite_(x.clone()), expected, atol=1e-5, rtol=1e-5)


def test_ablation_then_eraser_at_one_site_run_in_order_and_round_trip(classifier, tmp_path) -> None:
    texts, labels, groups = _texts(32)
    site = classifier.sites()[0]
    torch.manual_seed(0)
    sae = get_sae_class("relu")(SAEConfig(architecture="relu", d_in=32, d_sae=40))
    ablation = FeatureAblation.from_sae(site, sae, [1, 2, 3])
    classifier.set_interventions([ablation])
    [eraser] = fit_site_erasers(classifier, [site], texts, labels=labels, groups=groups, attribute="gender")
    classifier.set_interventions([ablation, eraser])
    batch = classifier.tokenizer(texts[:4], padding=True, return_tensors="pt")
    with torch.no_grad(), capture(classifier.backbone, [site]) as raw:
        classifier.set_interventions([])
        classifier(batch["input_ids"], batch["attention_mask"])
    with torch.no_grad(), capture(classifier.backbone, [site]) as edited:
        classifier.set_interventions([ablation, eraser])
        classifier(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(edited[site.name], eraser(ablation(raw[site.name])), atol=1e-5, rtol=1e-5)
    expected = classifier.predict_proba(texts)
    loaded = load_model(save_model(classifier, tmp_path / "edited"))
    assert [type(m).__name__ for m in loaded.interventions] == ["FeatureAblation", "ConceptErasure"]
    np.testing.assert_allclose(loaded.predict_proba(texts), expected, atol=1e-6)


def test_balanced_rows_equalise_the_cells_and_an_empty_cell_is_refused() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    groups = np.array(["F", "F", "M", "M", "M", "F", "M", "F"])
    rows = balanced_rows(labels, groups, attribute="gender")
    cells = {(int(labels[r]), str(groups[r])) for r in rows}
    assert len(rows) == 4 and cells == {(0, "F"), (0, "M"), (1, "F"), (1, "M")}
    with pytest.raises(ValueError) as err:
        balanced_rows(np.array([0, 0, 1, 1]), np.array(["F", "M", "M", "M"]), attribute="gender")
    assert str(err.value) == EMPTY_CELL.format(attribute="gender", cell=(1, "F"))
