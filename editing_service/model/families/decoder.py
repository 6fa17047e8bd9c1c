"""Decoder-only classifiers (GPT-2, GPT-NeoX/Pythia, Llama, Qwen2, Qwen3, Mistral, Phi, OPT).

Their `*ForSequenceClassification` head (`score`, no bias) scores every token and the model keeps the
rightmost non-pad token (`FamilyRule.read_position`). The first token is the attention sink, left to itself
by the SAEs and the edit (`FamilyRule.sink_positions`). OPT has no MLP site: its MLP runs on the
flattened [B * T, d] hidden states inside the block, with no module of its own.
"""

from __future__ import annotations

from editing_service.model.families import register
from editing_service.model.families.base import FamilyRule


class DecoderRule(FamilyRule):
    name = "decoder"
    model_types = frozenset({"gpt2", "gpt_neox", "llama", "qwen2", "qwen3", "mistral", "phi", "opt"})
    attn_paths = ("self_attn", "attn", "attention")
    mlp_paths = ("mlp",)
    head_paths = ("score",)
    sink_positions = 1


register(DecoderRule())
