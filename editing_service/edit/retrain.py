"""Retraining only the head, with the edit in place, on the same (biased) training data."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from editing_service.model.batching import length_sorted_batches
from editing_service.model.classifier import TextClassifier


@torch.inference_mode()
def head_features(
    classifier: TextClassifier, texts: list[str], *, batch_size: int = 32,
    on_progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """The features the head reads [n, d], with the classifier's interventions applied."""
    out: np.ndarray | None = None
    done = 0
    for rows, batch in length_sorted_batches(
        classifier.tokenizer, texts, batch_size=batch_size, max_length=classifier.max_length
    ):
        batch = batch.to(classifier.device)
        features, _ = classifier.head_features(batch["input_ids"], batch["attention_mask"])
        if out is None:
            out = np.zeros((len(texts), features.shape[-1]), dtype=np.float32)
        out[rows] = features.float().cpu().numpy()
        done += len(rows)
        if on_progress is not None:
            on_progress(done / len(texts))
    assert out is not None
    return out


def retrain_head(
    classifier: TextClassifier, texts: list[str], labels: np.ndarray, *, batch_size: int = 32,
    C: float = 1.0, seed: int = 0, on_progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Fit a fresh head on the edited features of `texts`; returns those features."""
    features = head_features(classifier, texts, batch_size=batch_size, on_progress=on_progress)
    classifier.fit_head(features, labels, C=C, seed=seed)
    return features
