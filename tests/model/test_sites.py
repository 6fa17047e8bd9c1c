"""Site discovery and hooks on tiny random models of every supported architecture."""

from __future__ import annotations

import pytest
import torch
from factories import ARCHITECTURES, make_model_folder
from torch import nn

from editing_service.model import capture, find_sites, intervene, load_classifier, resolve_sites
from editing_service.model.hooks import run_until
from editing_service.model.sites import UNSUPPORTED_LAYOUT, parse_site_name

CLASSES = ["nurse", "surgeon"]
TEXTS = ["she works as a nurse in the ward", "he is a surgeon", "the hospital team"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("models")
    return {arch: make_model_folder(root, arch) for arch in ARCHITECTURES}


NO_MLP_MODULE = {"opt"}  # OPT's MLP runs on flattened hidden states, with no module of its own


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_architecture_has_block_attn_and_mlp_sites(arch: str, folders: dict) -> None:
    clf = load_classifier(folders[arch], classes=CLASSES)
    sites = clf.sites(("block", "attn", "mlp"))
    expected = ["blocks.0.attn", "blocks.0.mlp", "blocks.0.out", "blocks.1.attn", "blocks.1.mlp", "blocks.1.out"]
    assert [s.name for s in sites] == [n for n in expected if not (arch in NO_MLP_MODULE and n.endswith("mlp"))]
    for site in sites:
        clf.backbone.get_submodule(site.module_path)  # resolves


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_capture_reads_each_block_output_and_replacing_with_itself_is_exact(arch: str, folders: dict) -> None:
    clf = load_classifier(folders[arch], classes=CLASSES)
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
    sites = clf.sites(("block", "attn", "mlp"))
    with torch.no_grad():
        base = clf.run_backbone(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        with capture(clf.backbone, sites) as store:
            clf.run_backbone(batch["input_ids"], batch["attention_mask"])
        with intervene(clf.backbone, {s: (lambda h: h.clone()) for s in sites}):
            again = clf.run_backbone(batch["input_ids"], batch["attention_mask"])
    assert set(store) == {s.name for s in sites}
    for hidden in store.values():
        assert hidden.shape[:2] == batch["input_ids"].shape and hidden.shape[-1] == 32
    torch.testing.assert_close(again.last_hidden_state, base, rtol=0, atol=0)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_zeroing_a_block_output_changes_the_model_output(arch: str, folders: dict) -> None:
    clf = load_classifier(folders[arch], classes=CLASSES)
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
    site = clf.sites()[0]
    with torch.no_grad():
        base = clf.run_backbone(batch["input_ids"], batch["attention_mask"])
        with intervene(clf.backbone, {site: torch.zeros_like}):
            zeroed = clf.run_backbone(batch["input_ids"], batch["attention_mask"])
    assert not torch.allclose(base.last_hidden_state, zeroed.last_hidden_state)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_run_until_reads_what_a_whole_pass_gives_and_stops_at_the_last_site(arch: str, folders: dict) -> None:
    clf = load_classifier(folders[arch], classes=CLASSES)
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
    first, last = clf.sites()[0], clf.sites()[-1]

    def run() -> object:
        return clf.run_backbone(batch["input_ids"], batch["attention_mask"])

    later = clf.backbone.get_submodule(last.module_path)
    hooks_before = {name: len(m._forward_hooks) for name, m in clf.backbone.named_modules()}
    calls = []
    counter = later.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        with capture(clf.backbone, [first]) as whole:
            run()
        assert len(calls) == (2 if last.call is not None else 1)  # ALBERT applies its one layer twice
        calls.clear()
        store = run_until(clf.backbone, [first], run)
    counter.remove()
    torch.testing.assert_close(store[first.name], whole[first.name], rtol=0, atol=0)
    assert len(calls) == (1 if last.call is not None and last.module_path == first.module_path else 0)
    assert {name: len(m._forward_hooks) for name, m in clf.backbone.named_modules()} == hooks_before


def test_hooks_are_removed_after_the_context_even_on_error(folders: dict) -> None:
    clf = load_classifier(folders["bert"], classes=CLASSES)
    site = clf.sites()[0]
    module = clf.backbone.get_submodule(site.module_path)
    with pytest.raises(RuntimeError), intervene(clf.backbone, {site: torch.zeros_like}):
        assert len(module._forward_hooks) == 1
        raise RuntimeError("boom")
    assert len(module._forward_hooks) == 0


def test_unsupported_layout_names_the_expected_module_list() -> None:
    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = type("C", (), {"num_hidden_layers": 3})()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])

    with pytest.raises(ValueError) as err:
        find_sites(Flat())
    assert str(err.value) == UNSUPPORTED_LAYOUT.format(arch="Flat", n=3, found=["layers (len 2)"])


def test_resolve_sites_by_name_and_unknown_names(folders: dict) -> None:
    clf = load_classifier(folders["gpt2"], classes=CLASSES)
    assert [s.name for s in resolve_sites(clf.backbone, ["blocks.1.out", "blocks.0.mlp"])] == [
        "blocks.0.mlp", "blocks.1.out",
    ]
    with pytest.raises(ValueError, match=r"Unknown site 'blocks.7.out'"):
        resolve_sites(clf.backbone, ["blocks.7.out"])
    with pytest.raises(ValueError, match=r"Bad site name 'layer3'"):
        parse_site_name("layer3")


ENCODERS_WITH_EMBEDDINGS = ["bert", "roberta", "distilbert", "deberta-v2"]


@pytest.mark.parametrize("arch", ENCODERS_WITH_EMBEDDINGS)
def test_the_embedding_output_is_a_site_and_is_what_block_0_reads(arch: str, folders: dict) -> None:
    clf = load_classifier(folders[arch], classes=CLASSES)
    sites = clf.sites(("embed", "block"))
    assert [s.name for s in sites] == ["embeddings.out", "blocks.0.out", "blocks.1.out"]
    assert parse_site_name("embeddings.out") == (-1, "embed")
    embed = sites[0]
    batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
    read: dict[str, torch.Tensor] = {}

    def read_input(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        read["in"] = args[0] if args else kwargs.get("hidden_states", kwargs.get("x"))

    block0 = clf.backbone.get_submodule(sites[1].module_path)
    handle = block0.register_forward_pre_hook(read_input, with_kwargs=True)
    try:
        with torch.no_grad(), capture(clf.backbone, [embed]) as store:
            clf.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        handle.remove()
    torch.testing.assert_close(store[embed.name], read["in"], rtol=0, atol=0)
    assert [s.name for s in resolve_sites(clf.backbone, ["blocks.1.out", "embeddings.out"])] == [
        "embeddings.out", "blocks.1.out",
    ]


def test_a_model_that_adds_its_embeddings_inline_has_no_embedding_site(folders: dict) -> None:
    clf = load_classifier(folders["gpt2"], classes=CLASSES)
    assert [s.name for s in clf.sites(("embed", "block"))] == ["blocks.0.out", "blocks.1.out"]
    with pytest.raises(ValueError, match=r"GPT2Model has no embeddings module"):
        resolve_sites(clf.backbone, ["embeddings.out"])
