"""A tiny probe classifier with TopK SAEs at block and MLP outputs, shared by the circuit tests."""

from __future__ import annotations

import numpy as np
import pytest
from factories import make_bios_frame, make_model_folder

from editing_service.activations import collect_activations
from editing_service.model import load_classifier
from editing_service.sae import SAETrainer


@pytest.fixture(scope="module")
def tiny_circuit(tmp_path_factory: pytest.TempPathFactory):
    """(classifier, {site: SAE}, texts, labels, cache) on a tiny random BERT."""
    root = tmp_path_factory.mktemp("circuit")
    frame = make_bios_frame(8)
    texts = frame.text.tolist()
    labels = (frame.occupation == "surgeon").to_numpy().astype(np.int64)
    clf = load_classifier(make_model_folder(root, "bert"), classes=["nurse", "surgeon"])
    sites = clf.sites(("block", "mlp"))
    cache = collect_activations(clf, texts, sites=sites, out_dir=root / "cache", labels=labels, progress=False)
    clf.fit_head(cache.head_features, labels)
    saes = {}
    for site in sites:
        trainer = SAETrainer(architecture="topk", d_sae=48, k=6, n_epochs=15, batch_size=256, seed=0)
        saes[site] = trainer.fit(cache.site(site.name)).sae_
    return clf, saes, texts, labels, cache
