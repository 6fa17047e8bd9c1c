"""Node scores: the indirect effect of every SAE feature and error node of a site, toward zero.

Scores are summed over token positions (padding dropped, [CLS] kept) and averaged over examples,
signed: a negative score means zeroing the node lowers the metric (the node supports the true class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class NodeScores:
    """Scores of one site: `features` [d_sae] and the error node, from `n_examples` examples."""

    site: str
    features: np.ndarray
    error: float
    method: str
    n_examples: int

    def to_dict(self) -> dict[str, object]:
        return {"site": self.site, "method": self.method, "n_examples": self.n_examples,
                "error": self.error, "features": self.features.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> NodeScores:
        return cls(site=data["site"], method=data["method"], n_examples=int(data["n_examples"]),
                   error=float(data["error"]), features=np.asarray(data["features"], dtype=np.float64))


class ScoreAccumulator:
    """Sums per-example effects over batches, then averages."""

    def __init__(self, site: str, d_sae: int, method: str) -> None:
        self.site, self.method = site, method
        self.features = torch.zeros(d_sae, dtype=torch.float64)
        self.error = 0.0
        self.n = 0

    def add(self, feature_effects: torch.Tensor, error_effects: torch.Tensor, mask: torch.Tensor) -> None:
        """feature_effects [B, T, d_sae], error_effects [B, T] (already summed over d), mask [B, T]."""
        m = mask.to(feature_effects.dtype)
        self.features += (feature_effects * m[..., None]).sum((0, 1)).double().cpu()
        self.error += float((error_effects * m).sum())
        self.n += int(mask.shape[0])

    def result(self) -> NodeScores:
        n = max(self.n, 1)
        return NodeScores(site=self.site, features=(self.features / n).numpy(), error=self.error / n,
                          method=self.method, n_examples=self.n)
