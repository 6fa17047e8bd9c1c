"""The metric attribution explains: one scalar per example from the class logits.

For two classes, the signed logit difference toward the true class (l1 - l0 if y == 1 else l0 - l1);
for more, the logit of the true class.
"""

from __future__ import annotations

import torch


def true_class_metric(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[B, C] logits, [B] labels -> [B] metric."""
    if logits.shape[-1] == 2:
        diff = logits[:, 1] - logits[:, 0]
        return torch.where(labels == 1, diff, -diff)
    return logits.gather(1, labels[:, None]).squeeze(1)
