"""ALBERT: one layer group shared across depth, applied `num_hidden_layers` times per forward pass.

Layer i is application number (i - first layer of its group) of group
`int(i / (num_hidden_layers / num_hidden_groups))`, the indexing of `AlbertTransformer.forward`.
"""

from __future__ import annotations

from torch import nn

from editing_service.model.families import register
from editing_service.model.families.base import BlockRef, FamilyRule

NO_LAYER_GROUPS = "Unsupported ALBERT layout {arch}: no `albert_layer_groups` module list."


class AlbertRule(FamilyRule):
    name = "albert"
    model_types = frozenset({"albert"})
    attn_paths = ("albert_layers.0.attention.dense",)
    mlp_paths = ("albert_layers.0.ffn_output",)

    def blocks(self, model: nn.Module) -> list[BlockRef]:
        groups = next((path for path, mod in model.named_modules()
                       if path.endswith("albert_layer_groups") and isinstance(mod, nn.ModuleList)), None)
        if groups is None:
            raise ValueError(NO_LAYER_GROUPS.format(arch=type(model).__name__))
        config = model.config  # type: ignore[union-attr]
        n_layers, n_groups = int(config.num_hidden_layers), int(config.num_hidden_groups)
        refs, calls = [], [0] * n_groups
        for layer in range(n_layers):
            group = int(layer / (n_layers / n_groups))
            refs.append(BlockRef(f"{groups}.{group}", call=calls[group]))
            calls[group] += 1
        return refs


register(AlbertRule())
