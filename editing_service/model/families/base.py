"""The default family rule: blocks are the `nn.ModuleList` whose length is `config.num_hidden_layers`.

This covers BERT, RoBERTa, DistilBERT and DeBERTa without more; other families override one method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

UNSUPPORTED_LAYOUT = (
    "Unsupported architecture {arch}: expected an nn.ModuleList of transformer blocks whose length "
    "equals config.num_hidden_layers ({n}); found ModuleLists {found}."
)


@dataclass(frozen=True)
class BlockRef:
    """One layer of a model: the block module's path and, for a block applied several times in one
    forward pass (ALBERT's shared layer), which application (0-based) is this layer; None when the
    module runs once per forward pass."""

    path: str
    call: int | None = None


class FamilyRule:
    """What a family of models looks like to the service; the defaults fit BERT-style encoders."""

    name: ClassVar[str] = "default"
    model_types: ClassVar[frozenset[str]] = frozenset()
    # Children of a block holding its attention / MLP output. For post-LN encoders the attention module
    # includes the residual add and LayerNorm, so its pure output is `attention.output.dense`.
    attn_paths: ClassVar[tuple[str, ...]] = ("attention.output.dense", "self_attn", "attn", "attention")
    mlp_paths: ClassVar[tuple[str, ...]] = ("output.dense", "mlp", "ffn")
    head_paths: ClassVar[tuple[str, ...]] = ("classifier.out_proj", "classifier", "score", "classifier.dense")
    # Leading tokens of every text that the SAEs never see and the edit never rewrites (`TextClassifier.
    # token_mask`). A decoder's first token is its attention sink, whose activations are some 100x the other
    # tokens' in the middle layers ("massive activations", Sun et al. 2024): left in, it holds nearly all the
    # variance an SAE is trained to explain and fires every feature hugely.
    sink_positions: ClassVar[int] = 0

    def blocks(self, model: nn.Module) -> list[BlockRef]:
        """The model's layers in the order data flows through them."""
        n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
        lists = [(path, mod) for path, mod in model.named_modules() if isinstance(mod, nn.ModuleList)]
        for path, mod in lists:
            if n_layers is not None and len(mod) == n_layers:
                return [BlockRef(f"{path}.{i}") for i in range(len(mod))]
        found = [f"{path or '<root>'} (len {len(mod)})" for path, mod in lists] or "none"
        raise ValueError(UNSUPPORTED_LAYOUT.format(arch=type(model).__name__, n=n_layers, found=found))

    def read_position(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, config: Any) -> torch.Tensor:
        """The token [B] whose features a head that reads every token ([B, T, d]) scores.

        The rule of transformers' `*ForSequenceClassification` decoders: the rightmost token that is not
        `config.pad_token_id` (so left and right padding both work, and with pad == EOS an appended EOS
        is skipped); the last token when the config has no pad token.
        """
        pad = config.get_text_config().pad_token_id if hasattr(config, "get_text_config") else config.pad_token_id
        if pad is None:
            return torch.full((input_ids.shape[0],), input_ids.shape[-1] - 1, device=input_ids.device)
        not_pad = (input_ids != pad).to(torch.int32)
        positions = torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32)
        return (positions * not_pad).argmax(-1)

    def forward_kwargs(self, model: nn.Module, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inputs the model's forward needs beyond input_ids and attention_mask."""
        return {}
