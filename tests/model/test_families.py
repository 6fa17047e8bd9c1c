"""Family rules: the decoder read position, shared layers, encoder-decoders, and folders refused at load."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from factories import DECODERS, WORDS, make_model_folder, make_tokenizer

from editing_service.activations import collect_activations
from editing_service.model import capture, intervene, load_classifier
from editing_service.model.classifier import SiteIntervention
from editing_service.model.families import registered
from editing_service.model.load import (
    ARCHITECTURE_MISMATCH,
    CLASSES_MISMATCH,
    CUSTOM_CODE,
    NO_TOKENIZER,
    UNKNOWN_MODEL_TYPE,
    VOCAB_MISMATCH,
)
from editing_service.model.sites import Site

CLASSES = ["nurse", "surgeon"]
# Different lengths, so that every batch is padded.
TEXTS = ["she works as a nurse in the ward with patients", "he is a surgeon", "the hospital team", "a nurse"]
# (appends EOS, pad == EOS): GPT-style tokenizers pad with EOS, some append it.
TOKENIZERS = {"eos_pad_is_eos": (True, True), "eos_own_pad": (True, False), "no_eos_pad_is_eos": (False, True)}


@pytest.fixture(scope="module")
def decoder_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("decoders")
    return {
        (arch, variant): make_model_folder(root, arch, sequence_classification=True, append_eos=eos,
                                           pad_is_eos=pad_is_eos, name=f"{arch}-{variant}")
        for arch in DECODERS for variant, (eos, pad_is_eos) in TOKENIZERS.items()
    }


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("variant", list(TOKENIZERS))
@pytest.mark.parametrize("arch", DECODERS)
def test_decoder_head_reads_the_token_the_model_scores(
    arch: str, variant: str, padding_side: str, decoder_folders: dict
) -> None:
    clf = load_classifier(decoder_folders[arch, variant], classes=CLASSES)
    assert clf.rule.name == "decoder" and clf.head.bias is None
    clf.tokenizer.padding_side = padding_side
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()
    with torch.no_grad():
        own = clf.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        features, logits = clf.head_features(batch["input_ids"], batch["attention_mask"])
        computed = clf.head(features)
    assert torch.equal(logits, own)
    assert (computed - own).abs().max().item() <= 1e-4
    if variant == "eos_pad_is_eos":  # the appended EOS is padding to the model: its features are not read
        eos = clf.tokenizer.eos_token_id
        with torch.no_grad():
            hidden = clf.backbone.base_model(input_ids=batch["input_ids"],
                                             attention_mask=batch["attention_mask"]).last_hidden_state
        at_eos = hidden[batch["input_ids"] == eos]
        assert not any(torch.allclose(row, f, atol=1e-6) for f in features for row in at_eos)


def test_every_decoder_family_has_its_rule() -> None:
    rules = registered()
    assert {t for t, rule in rules.items() if rule.name == "decoder"} >= {
        "gpt2", "gpt_neox", "llama", "qwen2", "qwen3", "mistral", "phi", "opt"}
    assert rules["albert"].name == "albert" and rules["t5"].name == rules["bart"].name == "encoder_decoder"


def test_albert_sites_are_each_application_of_the_shared_layer(tmp_path: Path) -> None:
    clf = load_classifier(make_model_folder(tmp_path, "albert"), classes=CLASSES)
    sites = clf.sites(("block", "attn", "mlp"))
    blocks = [s for s in sites if s.kind == "block"]
    assert len({s.module_path for s in blocks}) == 1 and [s.call for s in blocks] == [0, 1]
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
    module = clf.backbone.get_submodule(blocks[0].module_path)
    with torch.no_grad():
        hidden = clf.backbone(**{k: batch[k] for k in ("input_ids", "attention_mask")},
                              output_hidden_states=True).hidden_states
        with capture(clf.backbone, sites) as store:
            clf.run_backbone(batch["input_ids"], batch["attention_mask"])
            assert len(module._forward_hooks) == 2 and len(clf.backbone._forward_pre_hooks) == 6
        # Zeroing the first application only: the second one still runs, on zeros.
        with intervene(clf.backbone, {blocks[0]: torch.zeros_like}), capture(clf.backbone, blocks) as zeroed:
            clf.run_backbone(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(store["blocks.0.out"], hidden[1])
    torch.testing.assert_close(store["blocks.1.out"], hidden[2])
    assert torch.equal(zeroed["blocks.0.out"], torch.zeros_like(hidden[1]))
    assert not torch.allclose(zeroed["blocks.1.out"], hidden[2])
    assert len(module._forward_hooks) == 0 and len(clf.backbone._forward_pre_hooks) == 0


@pytest.mark.parametrize("arch", ["bart", "t5", "mt5"])
def test_encoder_decoder_sites_are_encoder_then_decoder_blocks(tmp_path: Path, arch: str) -> None:
    for sequence_classification in (False, True):
        clf = load_classifier(make_model_folder(tmp_path, arch, sequence_classification=sequence_classification),
                              classes=CLASSES)
        paths = [s.module_path for s in clf.sites()]
        assert len(paths) == clf.n_layers == 2 and ".encoder." in f".{paths[0]}" and ".decoder." in f".{paths[1]}"
        batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
        with torch.no_grad():
            out = clf.run_backbone(batch["input_ids"], batch["attention_mask"])
            with capture(clf.backbone, clf.sites()) as store:
                features, logits = clf.head_features(batch["input_ids"], batch["attention_mask"])
        assert store["blocks.0.out"].shape[:2] == store["blocks.1.out"].shape[:2] == batch["input_ids"].shape
        if sequence_classification:  # the head reads the (dense, tanh) features of the last EOS
            torch.testing.assert_close(clf.head(features), out.logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(logits, out.logits)
        else:  # the probe reads the decoder block, mean-pooled
            mask = batch["attention_mask"][..., None].float()
            torch.testing.assert_close(features, (store["blocks.1.out"] * mask).sum(1) / mask.sum(1))


# ---- folders refused or warned about at load -------------------------------------------------------


def test_a_folder_without_tokenizer_files_is_refused(tmp_path: Path) -> None:
    folder = make_model_folder(tmp_path, "bert")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(ValueError) as err:
        load_classifier(folder, classes=CLASSES)
    assert str(err.value) == NO_TOKENIZER.format(path=folder.resolve(), expected="vocab.txt")


@pytest.mark.parametrize("words", [WORDS[:8], [*WORDS, *(f"extra{i}" for i in range(20))]])
def test_a_tokenizer_of_another_vocabulary_size_is_refused(tmp_path: Path, words: list[str]) -> None:
    folder = make_model_folder(tmp_path, "gpt2")
    vocab_size = json.loads((folder / "config.json").read_text())["vocab_size"]
    tokenizer = make_tokenizer(words)
    tokenizer.save_pretrained(folder)
    with pytest.raises(ValueError) as err:
        load_classifier(folder, classes=CLASSES)
    assert str(err.value) == VOCAB_MISMATCH.format(path=folder.resolve(), n_tokens=len(tokenizer),
                                                   vocab_size=vocab_size)


@pytest.mark.parametrize("auto_map", [True, False])
def test_an_unknown_model_type_is_one_line_of_ours(tmp_path: Path, auto_map: bool) -> None:
    import transformers

    folder = make_model_folder(tmp_path, "bert")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "my_custom_bert"
    if auto_map:
        config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError) as err:
        load_classifier(folder, classes=CLASSES)
    message = str(err.value)
    assert message == UNKNOWN_MODEL_TYPE.format(path=folder.resolve(), model_type="my_custom_bert",
                                                version=transformers.__version__,
                                                custom=CUSTOM_CODE if auto_map else "")
    assert "\n" not in message and "trust_remote_code" not in message and "http" not in message


@pytest.mark.parametrize("sequence_classification", [True, False])
def test_architectures_naming_another_class_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, sequence_classification: bool
) -> None:
    folder = make_model_folder(tmp_path, "bert", sequence_classification=sequence_classification)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["LlamaForSequenceClassification" if sequence_classification else "GPT2Model"]
    (folder / "config.json").write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING, logger="editing_service.model.load"):
        clf = load_classifier(folder, classes=CLASSES)
    loaded = "BertForSequenceClassification" if sequence_classification else "BertModel"
    assert type(clf.backbone).__name__ == loaded
    assert ARCHITECTURE_MISMATCH.format(path=folder.resolve(), architectures=config["architectures"],
                                        loaded=loaded, model_type="bert") in caplog.messages


def test_a_masked_lm_checkpoint_loads_as_a_probe_without_warning(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    folder = make_model_folder(tmp_path, "bert")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["BertForMaskedLM"]
    (folder / "config.json").write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING, logger="editing_service.model.load"):
        load_classifier(folder, classes=CLASSES)
    assert not [m for m in caplog.messages if "names architectures" in m]


@pytest.mark.parametrize("arch", ["bert", "llama", "bart"])
def test_labels_are_matched_by_name(tmp_path: Path, arch: str) -> None:
    folder = make_model_folder(tmp_path, arch, sequence_classification=True, labels=["surgeon", "nurse"])
    as_saved = load_classifier(folder, classes=["surgeon", "nurse"])
    reordered = load_classifier(folder, classes=CLASSES)
    assert reordered.backbone.config.id2label == {0: "nurse", 1: "surgeon"}
    batch = as_saved.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        saved_logits = as_saved(batch["input_ids"], batch["attention_mask"])
        logits = reordered(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(logits, saved_logits[:, [1, 0]])
    assert reordered.predict(TEXTS) == as_saved.predict(TEXTS)


def test_labels_with_other_names_are_refused_listing_both(tmp_path: Path) -> None:
    folder = make_model_folder(tmp_path, "llama", sequence_classification=True, labels=["nurse", "doctor"])
    with pytest.raises(ValueError) as err:
        load_classifier(folder, classes=CLASSES)
    assert str(err.value) == CLASSES_MISMATCH.format(model_classes=["nurse", "doctor"], classes=CLASSES)


def test_copied_folder_with_tokenizer_files_loads(tmp_path: Path) -> None:
    folder = make_model_folder(tmp_path, "bert")
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert load_classifier(copy, classes=CLASSES).kind == "probe"


class _Zero(SiteIntervention):
    """Sets a site's output to zero."""

    def __init__(self, site: Site) -> None:
        super().__init__()
        self.site = site

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(hidden)


def test_a_decoders_first_token_is_left_alone_by_the_saes_and_the_edit(tmp_path: Path) -> None:
    # A decoder's first token is its attention sink (activations some 100x the others' in a real model's
    # middle layers): the SAEs' tokens and the edit leave it out; an encoder's tokens are all its real ones.
    decoder = load_classifier(make_model_folder(tmp_path, "llama"), classes=CLASSES)
    encoder = load_classifier(make_model_folder(tmp_path, "bert"), classes=CLASSES)
    batch = decoder.tokenizer(TEXTS, padding=True, return_tensors="pt")
    mask = batch["attention_mask"]
    expected = mask.bool().clone()
    expected[:, 0] = False
    assert torch.equal(decoder.token_mask(mask), expected)
    assert torch.equal(encoder.token_mask(mask), mask.bool())
    left = torch.flip(mask, [1])  # left padding: the sink is each text's first real token
    first_real = left.argmax(1)
    expected_left = left.bool().clone()
    expected_left[torch.arange(len(TEXTS)), first_real] = False
    assert torch.equal(decoder.token_mask(left), expected_left)
    assert decoder.token_counts(mask.sum(1).numpy()).tolist() == (mask.sum(1) - 1).tolist()

    site = decoder.resolve_sites(["blocks.0.out"])[0]
    with torch.no_grad(), capture(decoder.backbone, [site]) as clean:
        decoder.backbone(**batch)
    decoder.set_interventions([_Zero(site)])
    with torch.no_grad(), capture(decoder.backbone, [site]) as edited:
        decoder.backbone(**batch)
    decoder.set_interventions([])
    assert torch.equal(edited[site.name][:, 0], clean[site.name][:, 0])
    assert not edited[site.name][:, 1:].any()

    cache = collect_activations(decoder, TEXTS, sites=[site], out_dir=tmp_path / "cache", progress=False)
    assert cache.n_tokens == int(mask.sum()) - len(TEXTS) and (cache.position >= 1).all()
    rows = clean[site.name][torch.as_tensor(cache.example_index, dtype=torch.long),
                            torch.as_tensor(cache.position, dtype=torch.long)]
    assert torch.allclose(torch.tensor(cache.read(site.name)), rows, atol=1e-5)
