"""Per-site leakage: the within-class group probe and the diagnosis of a tiny classifier."""

from __future__ import annotations

import numpy as np
import torch
from factories import make_model_folder
from torch import nn

from editing_service.model import load_classifier
from editing_service.report.site_leakage import HEAD_INPUT, diagnose_leakage, within_class_probe
from editing_service.sae import SAEConfig, get_sae_class


def test_the_within_class_probe_reads_the_group_and_not_the_class() -> None:
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.integers(0, 2, n)
    groups = np.where(rng.random(n) < 0.5, "F", "M")
    noise = rng.standard_normal((n, 8))
    with_group = noise + 3.0 * (groups == "F")[:, None] * np.eye(8)[0]
    with_class_only = noise + 3.0 * labels[:, None] * np.eye(8)[1]
    assert within_class_probe(with_group, groups, labels) > 0.9
    assert abs(within_class_probe(with_class_only, groups, labels) - 0.5) < 0.1


def test_diagnosis_covers_every_site_and_the_head_input_and_marks_flagged_carriers(tmp_path) -> None:
    clf = load_classifier(make_model_folder(tmp_path, "bert"), classes=["nurse", "surgeon"])
    clf.set_head(nn.Linear(32, 2))
    torch.manual_seed(0)
    saes = {s.name: get_sae_class("relu")(SAEConfig(architecture="relu", d_in=32, d_sae=24)) for s in clf.sites()}
    texts, labels, groups = [], [], []
    for i in range(40):
        group, label = ("F", "M")[i % 2], (i // 2) % 2
        texts.append(f"{'she her' if group == 'F' else 'he his'} works as a {('nurse', 'surgeon')[label]}")
        labels.append(label)
        groups.append(group)
    diagnosis = diagnose_leakage(clf, saes, texts, labels=np.array(labels), groups=np.array(groups),
                                 label_names=["nurse", "surgeon"], attribute="gender",
                                 flagged={"blocks.0.out": [0, 1, 2]}, carrier_threshold=0.2, top=5)
    assert [s.site for s in diagnosis.sites] == ["blocks.0.out", "blocks.1.out", HEAD_INPUT]
    head = diagnosis.sites[-1]
    assert head.error is None and head.carriers == []
    first = diagnosis.sites[0]
    assert first.activation > 0.9  # the pronoun is the only difference between the groups
    assert first.n_flagged == 3 and len(first.carriers) <= 5
    assert all(c.flagged == (c.feature in {0, 1, 2}) for c in first.carriers)
    assert [c.separation for c in first.carriers] == sorted((c.separation for c in first.carriers), reverse=True)
    assert first.n_carriers_flagged <= min(first.n_carriers, 3)
