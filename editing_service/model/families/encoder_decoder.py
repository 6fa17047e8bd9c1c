"""Encoder-decoder models (BART, mBART, T5, mT5): encoder blocks then decoder blocks, numbered on.

The decoder reads the input shifted right by one token, so its positions line up with the input's.
Their sequence classifiers' head is `classification_head.out_proj`, which reads the (dense, tanh)
features of the last EOS token. T5's base model needs `decoder_input_ids`, which it gets as its
sequence classifier builds them (`_shift_right(input_ids)`).
"""

from __future__ import annotations

import torch
from torch import nn

from editing_service.model.families import register
from editing_service.model.families.base import BlockRef, FamilyRule

NO_STACKS = "Unsupported encoder-decoder layout {arch}: expected encoder and decoder block lists, found {found}."
_STACK_NAMES = ("layers", "block")


class EncoderDecoderRule(FamilyRule):
    name = "encoder_decoder"
    model_types = frozenset({"bart", "mbart", "t5", "mt5"})
    attn_paths = ("self_attn", "layer.0.SelfAttention")
    mlp_paths = ("fc2", "layer.1.DenseReluDense", "layer.2.DenseReluDense")
    head_paths = ("classification_head.out_proj",)

    def blocks(self, model: nn.Module) -> list[BlockRef]:
        stacks: dict[str, list[BlockRef]] = {}
        for path, module in model.named_modules():
            parent, _, leaf = path.rpartition(".")
            side = parent.rpartition(".")[2]
            if isinstance(module, nn.ModuleList) and leaf in _STACK_NAMES and side in ("encoder", "decoder"):
                stacks.setdefault(side, [BlockRef(f"{path}.{i}") for i in range(len(module))])
        if set(stacks) != {"encoder", "decoder"}:
            raise ValueError(NO_STACKS.format(arch=type(model).__name__, found=sorted(stacks) or "none"))
        return stacks["encoder"] + stacks["decoder"]

    def forward_kwargs(self, model: nn.Module, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        shift = getattr(model, "_shift_right", None)
        return {"decoder_input_ids": shift(input_ids)} if shift is not None else {}


register(EncoderDecoderRule())
