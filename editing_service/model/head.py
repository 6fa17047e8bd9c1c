"""Fitting a linear classification head on the features it reads.

Logistic regression from scikit-learn on centred features divided by one global scale (the root mean
variance over dimensions), folded back into the weights so the result is a plain
`nn.Linear(d, n_classes)` that reads raw features. One scale for every dimension keeps C comparable
across models without the per-dimension standardisation that gives low-variance directions (where an
SAE's reconstruction error lives) large weights.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

EMPTY_FEATURES = "Cannot fit a head on 0 examples."
ONE_CLASS = "Cannot fit a head: the training labels contain only class {label} of {n_classes} classes."
SHAPE_MISMATCH = "features has {n_features} rows but labels has {n_labels}."


def fit_linear_head(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    C: float = 1.0,
    max_iter: int = 2000,
    seed: int = 0,
) -> nn.Linear:
    """Fit a multinomial logistic-regression head; returns `nn.Linear(d, n_classes)` in float32."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(features) == 0:
        raise ValueError(EMPTY_FEATURES)
    if len(features) != len(labels):
        raise ValueError(SHAPE_MISMATCH.format(n_features=len(features), n_labels=len(labels)))
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(ONE_CLASS.format(label=int(present[0]), n_classes=n_classes))

    mean = features.mean(0)
    scale = float(np.sqrt(features.var(0).mean())) or 1.0
    model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    model.fit((features - mean) / scale, labels)

    coef = model.coef_ / scale  # [r, d], r = 1 for binary problems
    intercept = model.intercept_ - coef @ mean
    weight = np.zeros((n_classes, features.shape[1]))
    bias = np.zeros(n_classes)
    if len(model.classes_) == 2 and coef.shape[0] == 1:
        # Binary: sklearn's single logit is the difference between class 1 and class 0.
        weight[model.classes_[1]], bias[model.classes_[1]] = coef[0], intercept[0]
    else:
        weight[model.classes_], bias[model.classes_] = coef, intercept
        # Classes absent from training never win.
        missing = np.setdiff1d(np.arange(n_classes), model.classes_)
        bias[missing] = -1e4
    head = nn.Linear(features.shape[1], n_classes)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))
    return head
