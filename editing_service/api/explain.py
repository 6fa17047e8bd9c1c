"""Where an edit's ablated features fire on one text: the playground's token shading.

The edited model holds each ablated feature's encoder row (its `FeatureAblation` interventions); the
original model's site outputs, read with `capture`, go through them, so the values are the features'
activations in the original model, token by token, exactly as the edit sees them at its first site. The
family's sink positions, which the edit leaves alone, read 0.
"""

from __future__ import annotations

import numpy as np
import torch

from editing_service.edit.ablation import FeatureAblation
from editing_service.model import TextClassifier, capture

NOT_AN_EDIT = "The edited model has no feature ablation to explain."


@torch.inference_mode()
def ablated_feature_activations(
    original: TextClassifier, edited: TextClassifier, text: str
) -> tuple[list[str], dict[tuple[str, int], np.ndarray]]:
    """(the text's tokens, {(site, feature): activation on each token}) for every ablated feature."""
    ablations = [m for m in edited.interventions if isinstance(m, FeatureAblation)]
    if not ablations:
        raise ValueError(NOT_AN_EDIT)
    batch = original.tokenizer([text], truncation=True, max_length=original.max_length, return_tensors="pt")
    batch = batch.to(original.device)
    with capture(original.backbone, [m.site for m in ablations]) as store:
        original.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    tokens = original.tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    edited_tokens = original.token_mask(batch["attention_mask"])[0].cpu().numpy()
    out: dict[tuple[str, int], np.ndarray] = {}
    for ablation in ablations:
        hidden = store[ablation.site.name][0].to(ablation.W_enc.device, torch.float32)  # [T, d]
        values = ablation.activations(hidden).cpu().numpy() * edited_tokens[:, None]  # [T, n]
        for column, feature in enumerate(ablation.features):
            out[(ablation.site.name, feature)] = values[:, column]
    return tokens, out
