"""Loading classifiers (probe and sequence-classification), the head, and bad model folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import make_model_folder

from editing_service.model import TextClassifier, fit_linear_head, load_classifier, mean_pool
from editing_service.model.classifier import NOT_FITTED
from editing_service.model.load import CLASSES_MISMATCH, NO_CONFIG, NO_SAFETENSORS

CLASSES = ["nurse", "surgeon"]
TEXTS = ["she works as a nurse in the ward", "he is a surgeon", "the hospital team", "a nurse"]


def test_probe_reads_the_mean_pooled_output_of_its_block(tmp_path) -> None:
    clf = load_classifier(make_model_folder(tmp_path, "bert"), classes=CLASSES, probe_layer=0)
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = clf.backbone(**{k: batch[k] for k in ("input_ids", "attention_mask")},
                              output_hidden_states=True).hidden_states[1]
        features, logits = clf.head_features(batch["input_ids"], batch["attention_mask"])
    mask = batch["attention_mask"][..., None].float()
    torch.testing.assert_close(features, (hidden * mask).sum(1) / mask.sum(1))
    assert logits is None and not clf.is_fitted
    with pytest.raises(ValueError, match="not fitted yet"):
        clf.predict(TEXTS)
    assert NOT_FITTED.startswith("This classifier's head is not fitted")


def test_mean_pool_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).item() == 2.0


def test_fitted_head_predicts_and_probabilities_match_logits(tmp_path) -> None:
    clf = load_classifier(make_model_folder(tmp_path, "gpt2"), classes=CLASSES)
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        features, _ = clf.head_features(batch["input_ids"], batch["attention_mask"])
    labels = np.array([0, 1, 1, 0])
    clf.fit_head(features.numpy(), labels)
    proba = clf.predict_proba(TEXTS, batch_size=3)
    with torch.no_grad():
        expected = torch.softmax(clf(batch["input_ids"], batch["attention_mask"]), -1).numpy()
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    assert clf.predict(TEXTS) == [CLASSES[i] for i in expected.argmax(1)]


def test_linear_head_matches_sklearn_decisions() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * np.array([1, 10, 0.1, 1, 3]) + 2.0
    score = x[:, 0] + 0.1 * x[:, 1] - 5 * x[:, 2] + rng.normal(size=200)
    y = (score > np.median(score)).astype(int)
    head = fit_linear_head(x, y, n_classes=2)
    scale = np.sqrt(x.var(0).mean())  # one scale for every dimension, not per-dimension standardisation
    ref = LogisticRegression(max_iter=2000, random_state=0).fit((x - x.mean(0)) / scale, y)
    with torch.no_grad():
        logits = head(torch.tensor(x, dtype=torch.float32)).numpy()
    expected = ref.decision_function((x - x.mean(0)) / scale)
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta", "gpt2", "llama"])
def test_sequence_classifier_head_is_its_final_linear(tmp_path, arch: str) -> None:
    folder = make_model_folder(tmp_path, arch, sequence_classification=True)
    clf = load_classifier(folder, classes=CLASSES)
    assert clf.kind == "sequence_classification" and clf.is_fitted
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        features, logits = clf.head_features(batch["input_ids"], batch["attention_mask"])
        expected = clf.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(clf.head(features), expected, atol=1e-5, rtol=1e-5)


def test_sequence_classifier_with_other_labels_is_refused(tmp_path) -> None:
    folder = make_model_folder(tmp_path, "bert", sequence_classification=True, labels=["neg", "pos"])
    with pytest.raises(ValueError) as err:
        load_classifier(folder, classes=CLASSES)
    assert str(err.value) == CLASSES_MISMATCH.format(model_classes=["neg", "pos"], classes=CLASSES)


def test_bad_model_folders(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_classifier(tmp_path / "missing", classes=CLASSES)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError) as err:
        load_classifier(tmp_path / "empty", classes=CLASSES)
    assert str(err.value) == NO_CONFIG.format(path=(tmp_path / "empty").resolve())
    folder = make_model_folder(tmp_path, "bert")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ValueError) as err:
        load_classifier(folder, classes=CLASSES)
    assert str(err.value).startswith(NO_SAFETENSORS.split("{found}")[0].format(path=folder.resolve()))


def test_embedded_default_loads_offline() -> None:
    clf = load_classifier(None, classes=CLASSES)
    assert isinstance(clf, TextClassifier) and clf.kind == "probe" and clf.probe_layer == 5
    assert clf.source.embedded_default and len(clf.sites()) == 6


def test_sharded_safetensors_load_and_hash_every_shard(tmp_path) -> None:
    from transformers import AutoModelForSequenceClassification

    folder = make_model_folder(tmp_path, "llama", sequence_classification=True)
    whole = load_classifier(folder, classes=CLASSES)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    model.save_pretrained(folder, max_shard_size="20KB")
    shards = sorted(folder.glob("*.safetensors"))
    assert len(shards) > 1 and (folder / "model.safetensors.index.json").is_file()
    sharded = load_classifier(folder, classes=CLASSES)
    assert sharded.source.weights_sha256 != whole.source.weights_sha256
    np.testing.assert_array_equal(sharded.predict_proba(TEXTS), whole.predict_proba(TEXTS))


def test_dtype_auto_is_the_checkpoints_on_a_gpu_and_float32_on_the_cpu() -> None:
    from transformers import BertConfig

    from editing_service.model.dtype import resolve_dtype

    config = BertConfig(dtype="bfloat16")
    assert resolve_dtype("auto", "cuda", config) == torch.bfloat16
    assert resolve_dtype("auto", "cpu", config) == torch.float32
    assert resolve_dtype("auto", "cuda", BertConfig()) == torch.float32
    assert resolve_dtype("float16", "cpu", config) == torch.float16


@pytest.mark.parametrize("device", ["cpu", *(["cuda"] if torch.cuda.is_available() else [])])
@pytest.mark.parametrize(("arch", "sequence_classification"), [("gpt2", True), ("bert", False)])
def test_a_bfloat16_model_reads_sites_in_float32(tmp_path, device: str, arch: str,
                                                 sequence_classification: bool) -> None:
    from editing_service.model import capture

    folder = make_model_folder(tmp_path, arch, sequence_classification=sequence_classification)
    clf = load_classifier(folder, classes=CLASSES, dtype="bfloat16", device=device)
    assert clf.dtype == torch.bfloat16
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt").to(device)
    with torch.no_grad(), capture(clf.backbone, clf.sites()) as store:
        features, _ = clf.head_features(batch["input_ids"], batch["attention_mask"])
    assert all(h.dtype == torch.float32 for h in store.values())
    if not sequence_classification:
        clf.fit_head(features.float().cpu().numpy(), np.array([0, 1, 1, 0]))
    proba = clf.predict_proba(TEXTS)
    assert proba.dtype == np.float32 and np.allclose(proba.sum(1), 1.0)
