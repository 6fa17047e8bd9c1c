"""Finding the hook sites of a transformer.

A site is a module whose output we read or replace: the output of every transformer block (always),
the attention and MLP outputs where they can be identified, and the embedding output (`embeddings.out`,
what the first block reads) where the model has an embeddings module. Where a family keeps its blocks
and which children hold attention and MLP is its family rule (`editing_service.model.families`); a block
shared across depth (ALBERT) gives one site per application, told apart by `Site.call`. The embeddings
module is the parent of the input embedding table when that parent does not hold the blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from torch import nn

from editing_service.model.families import BlockRef, rule_for
from editing_service.model.families.base import UNSUPPORTED_LAYOUT

SiteKind = Literal["embed", "block", "attn", "mlp"]
SITE_KINDS: tuple[SiteKind, ...] = ("embed", "block", "attn", "mlp")
EMBEDDING_SITE = "embeddings.out"
EMBEDDING_LAYER = -1  # the embedding output comes before block 0
_SITE_NAME = re.compile(r"^blocks\.(\d+)\.(out|attn|mlp)$")
_KIND_SUFFIX = {"block": "out", "attn": "attn", "mlp": "mlp"}
_KIND_RANK = {"embed": 0, "attn": 1, "mlp": 2, "block": 3}

UNKNOWN_SITE = "Unknown site {name!r}; this model has sites {known}."
BAD_SITE_NAME = (
    "Bad site name {name!r}: expected 'embeddings.out', 'blocks.<layer>.out', 'blocks.<layer>.attn' or "
    "'blocks.<layer>.mlp'."
)
NO_EMBEDDINGS = (
    "{arch} has no embeddings module (the input embedding table's parent is the whole model), so it has "
    "no site 'embeddings.out'."
)

__all__ = ["EMBEDDING_SITE", "SITE_KINDS", "UNSUPPORTED_LAYOUT", "Site", "SiteKind", "find_blocks",
           "find_embeddings", "find_sites", "parse_site_name", "resolve_sites", "site_name"]


@dataclass(frozen=True)
class Site:
    """One hook point: `name` like 'blocks.3.out', `module_path` relative to the model root, and `call`:
    which application of that module within one forward pass (None: its only one)."""

    name: str
    layer: int
    kind: SiteKind
    module_path: str
    call: int | None = None

    @property
    def forward_order(self) -> tuple[int, int, int]:
        """Sorts sites in the order a forward pass reaches them (within a block: attention, MLP, output)."""
        return self.layer, _KIND_RANK[self.kind], self.call or 0


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


def find_blocks(model: nn.Module) -> list[BlockRef]:
    """The model's layers (block module path and application), in the order data flows through them."""
    return rule_for(model).blocks(model)


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
    if any(ref.path.startswith(parent + ".") for ref in find_blocks(model)):
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
    rule = rule_for(model)
    sites: list[Site] = []
    if "embed" in kinds and (embeddings := find_embeddings(model)) is not None:
        sites.append(Site(EMBEDDING_SITE, EMBEDDING_LAYER, "embed", embeddings))
    for layer, ref in enumerate(rule.blocks(model)):
        block = model.get_submodule(ref.path)
        for kind, candidates in (("attn", rule.attn_paths), ("mlp", rule.mlp_paths)):
            if kind in kinds and (sub := _first_submodule(block, candidates)) is not None:
                sites.append(Site(site_name(layer, kind), layer, kind, f"{ref.path}.{sub}", ref.call))
        if "block" in kinds:
            sites.append(Site(site_name(layer, "block"), layer, "block", ref.path, ref.call))
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
