"""Automatic forward batch sizes: the formula on made-up memory figures, and a fixed size left alone."""

from __future__ import annotations

import torch
from factories import make_model_folder

from editing_service.model import load_classifier, memory
from editing_service.model.memory import MAX_AUTO_BATCH, auto_batch_size, forward_batch_size

GIB = 2**30
MINILM = {"hidden": 384, "heads": 12, "max_length": 256, "n_sites": 6}


def test_the_batch_follows_the_formula_and_grows_with_free_memory() -> None:
    # per text: 256 * (384 * (12 * 4 + 4 * 6) + 2 * 12 * 256 * 4) = 13,369,344 bytes (12.75 MiB)
    per_text = 256 * (384 * (12 * 4 + 4 * 6) + 2 * 12 * 256 * 4)
    assert auto_batch_size(GIB, **MINILM, bytes_per_value=4) == int(0.5 * GIB // per_text) == 40
    assert auto_batch_size(GIB // 4, **MINILM, bytes_per_value=4) == 10
    assert auto_batch_size(GIB, **MINILM, bytes_per_value=2) > 40  # half-precision activations
    assert auto_batch_size(1000 * GIB, **MINILM, bytes_per_value=4) == MAX_AUTO_BATCH
    assert auto_batch_size(1, **MINILM, bytes_per_value=4) == 1  # never below one text


def test_wider_deeper_and_longer_models_get_smaller_batches() -> None:
    small = auto_batch_size(2 * GIB, **MINILM, bytes_per_value=4)
    assert small < MAX_AUTO_BATCH
    for bigger in ({"hidden": 768}, {"n_sites": 12}, {"max_length": 512}):
        assert auto_batch_size(2 * GIB, **{**MINILM, **bigger}, bytes_per_value=4) < small


def test_auto_reads_the_free_memory_of_the_classifier_device(tmp_path, monkeypatch) -> None:
    clf = load_classifier(make_model_folder(tmp_path, "bert"), classes=["nurse", "surgeon"], max_length=32)
    asked: list[torch.device] = []
    monkeypatch.setattr(memory, "free_memory", lambda device: asked.append(device) or 64 * 2**20)
    config = clf.backbone.config
    expected = auto_batch_size(64 * 2**20, hidden=config.hidden_size, heads=config.num_attention_heads,
                               max_length=32, n_sites=2, bytes_per_value=4)
    assert forward_batch_size("auto", clf, n_sites=2) == expected and asked == [clf.device]
    assert forward_batch_size(7, clf, n_sites=2) == 7 and len(asked) == 1
