"""Splicing SAEs into a classifier: with the error term the outputs are unchanged, without it they are
the reconstruction's, on every supported architecture."""

from __future__ import annotations

import pytest
import torch
from factories import ARCHITECTURES, make_model_folder
from torch import nn

from editing_service.model import capture, load_classifier
from editing_service.sae import SAEConfig, TopKSAE
from editing_service.sae.splice import splice

TEXTS = ["she works as a nurse in the ward", "he is a surgeon", "the hospital team", "a nurse"]


def _random_topk(d_in: int, seed: int) -> TopKSAE:
    torch.manual_seed(seed)
    sae = TopKSAE(SAEConfig(architecture="topk", d_in=d_in, d_sae=48, k=4))
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_(0, 0.3)
    return sae


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_splice_with_error_term_leaves_outputs_unchanged(tmp_path, arch: str) -> None:
    clf = load_classifier(make_model_folder(tmp_path, arch), classes=["nurse", "surgeon"])
    clf.set_head(nn.Linear(32, 2))
    sites = clf.sites(("block", "attn", "mlp"))
    saes = {site: _random_topk(32, i) for i, site in enumerate(sites)}
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        base = clf(batch["input_ids"], batch["attention_mask"])
        with splice(clf.backbone, saes, keep_error=True):
            spliced = clf(batch["input_ids"], batch["attention_mask"])
        with splice(clf.backbone, saes, keep_error=False):
            dropped = clf(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(spliced, base, rtol=0, atol=0)
    assert not torch.allclose(dropped, base, atol=1e-3)


def test_splice_without_error_term_outputs_the_reconstruction(tmp_path) -> None:
    clf = load_classifier(make_model_folder(tmp_path, "gpt2"), classes=["nurse", "surgeon"])
    site = clf.sites()[0]
    sae = _random_topk(32, 0)
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        with capture(clf.backbone, [site]) as clean:
            clf.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        with splice(clf.backbone, {site: sae}, keep_error=False) as nodes, capture(clf.backbone, [site]) as out:
            clf.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    torch.testing.assert_close(out[site.name], sae.decode(sae.encode(clean[site.name])))
    torch.testing.assert_close(nodes[site.name].error, clean[site.name] - out[site.name])


def test_gradient_splice_needs_the_error_term(tmp_path) -> None:
    clf = load_classifier(make_model_folder(tmp_path, "bert"), classes=["nurse", "surgeon"])
    with pytest.raises(ValueError, match="track_grad needs keep_error=True"):
        with splice(clf.backbone, {clf.sites()[0]: _random_topk(32, 0)}, keep_error=False, track_grad=True):
            pass
