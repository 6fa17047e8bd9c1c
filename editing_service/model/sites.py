"""Finding the hook sites of a transformer generically.

A site is a module whose output we read or replace: the output of every transformer block (always),
the attention and MLP outputs where they can be identified, and the embedding output (`embeddings.out`,
what the first block reads) where the model has an embeddings module. Blocks are found as the
`nn.ModuleList` whose length equals `config.num_hidden_layers`, which covers BERT, RoBERTa,
DistilBERT, DeBERTa, GPT-2, GPT-NeoX and Llama-style models without per-architecture tables; the
embeddings module is the parent of the input embedding table when that parent is not the whole model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from torch import nn

SiteKind = Literal["embed", "block", "attn", "mlp"]
SITE_KINDS: tuple[SiteKind, ...] = ("embed", "block", "attn", "mlp")
EMBEDDING_SITE = "embeddings.out"
EMBEDDING_LAYER = -1  # the embedding output comes before block 0
_SITE_NAME = re.compile(r"^blocks\.(\d+)\.(out|attn|mlp)$")
_KIND_SUFFIX = {"block": "out", "attn": "attn", "mlp": "mlp"}

UNSUPPORTED_LAYOUT = (
    "Unsupported architecture {arch}: expected an nn.ModuleList of transformer blocks whose length "
    "equals config.num_hidden_layers ({n}); found ModuleLists {found}."
)
UNKNOWN_SITE = "Unknown site {name!r}; this model has sites {known}."
BAD_SITE_NAME = (
    "Bad site name {name!r}: expected 'embeddings.out', 'blocks.<layer>.out', 'blocks.<layer>.attn' or "
    "'blocks.<layer>.mlp'."
)
NO_EMBEDDINGS = (
    "{arch} has no embeddings module (the input embedding table's parent is the whole model), so it has "
    "no site 'embeddings.out'."
)

# Children that hold a block's attention / MLP. For post-LN encoders (BERT, RoBERTa, DeBERTa) the
# attention module includes the residual add and LayerNorm, so its pure output is the `dense`
# projection inside `attention.output`, and the MLP's is the `output.dense` projection.
_ATTN_PATHS = ("attention.output.dense", "self_attn", "attn", "attention")
_MLP_PATHS = ("output.dense", "mlp", "ffn")


@dataclass(frozen=True)
class Site:
    """One hook point: `name` like 'blocks.3.out', `module_path` relative to the model root."""

    name: str
    layer: int
    kind: SiteKind
    module_path: str


def site_name(layer: int, kind: SiteKind) -> str:
    if kind == "embed":
        return EMBEDDING_SITE
    return f"blocks.{layer}.{_KIND_SUFFIX[kind]}"


def parse_site_name(name: str) -> tuple[int, SiteKind]:
    if name == EMBEDDING_SITE:
        return EMBEDDING_LAYER, "embed"
    match = _SITE_NAME.match(name)
    if match is None:
        raise ValueError(BAD_SITE_NAME.format(name=name))
    kind = {"out": "block", "attn": "attn", "mlp": "mlp"}[match.group(2)]
    return int(match.group(1)), kind  # type: ignore[return-value]


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """Return (path, blocks): the ModuleList of transformer blocks."""
    config = getattr(model, "config", None)
    n_layers = getattr(config, "num_hidden_layers", None)
    lists = [(path, mod) for path, mod in model.named_modules() if isinstance(mod, nn.ModuleList)]
    for path, mod in lists:
        if n_layers is not None and len(mod) == n_layers:
            return path, mod
    arch = type(model).__name__
    found = [f"{path or '<root>'} (len {len(mod)})" for path, mod in lists] or "none"
    raise ValueError(UNSUPPORTED_LAYOUT.format(arch=arch, n=n_layers, found=found))


def find_embeddings(model: nn.Module) -> str | None:
    """Path of the module whose output is the embedded input (word + position embeddings, normalised),
    or None when the model adds its embeddings inline (GPT-2 style)."""
    get = getattr(model, "get_input_embeddings", None)
    table = get() if callable(get) else None
    if table is None:
        return None
    paths = {id(mod): path for path, mod in model.named_modules()}
    table_path = paths.get(id(table))
    if not table_path or "." not in table_path:
        return None
    parent = table_path.rsplit(".", 1)[0]
    blocks_path, _ = find_blocks(model)
    if blocks_path == parent or blocks_path.startswith(parent + "."):
        return None  # the parent holds the blocks: its output is not the embedding output
    return parent


def _first_submodule(block: nn.Module, candidates: tuple[str, ...]) -> str | None:
    for path in candidates:
        try:
            block.get_submodule(path)
        except AttributeError:
            continue
        return path
    return None


def find_sites(model: nn.Module, *, kinds: tuple[SiteKind, ...] = ("block",)) -> list[Site]:
    """All sites of the requested kinds: the embedding output first, then by layer and kind (attn, mlp, block)."""
    for kind in kinds:
        if kind not in SITE_KINDS:
            raise ValueError(f"Unknown site kind {kind!r}; expected one of {list(SITE_KINDS)}.")
    blocks_path, blocks = find_blocks(model)
    sites: list[Site] = []
    if "embed" in kinds and (embeddings := find_embeddings(model)) is not None:
        sites.append(Site(EMBEDDING_SITE, EMBEDDING_LAYER, "embed", embeddings))
    for layer, block in enumerate(blocks):
        prefix = f"{blocks_path}.{layer}"
        if "attn" in kinds and (sub := _first_submodule(block, _ATTN_PATHS)) is not None:
            sites.append(Site(site_name(layer, "attn"), layer, "attn", f"{prefix}.{sub}"))
        if "mlp" in kinds and (sub := _first_submodule(block, _MLP_PATHS)) is not None:
            sites.append(Site(site_name(layer, "mlp"), layer, "mlp", f"{prefix}.{sub}"))
        if "block" in kinds:
            sites.append(Site(site_name(layer, "block"), layer, "block", prefix))
    return sites


def resolve_sites(model: nn.Module, names: list[str] | None) -> list[Site]:
    """Sites by name (all block outputs when `names` is None), in model order."""
    if names is None:
        return find_sites(model)
    kinds = tuple(dict.fromkeys(parse_site_name(n)[1] for n in names))
    by_name = {s.name: s for s in find_sites(model, kinds=kinds)}
    if EMBEDDING_SITE in names and EMBEDDING_SITE not in by_name:
        raise ValueError(NO_EMBEDDINGS.format(arch=type(model).__name__))
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(UNKNOWN_SITE.format(name=unknown[0], known=sorted(by_name)))
    wanted = set(names)
    return [s for s in by_name.values() if s.name in wanted]
