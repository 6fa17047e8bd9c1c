"""Leakage probes: how well the protected attribute can be read back from a representation.

Two probes, both standardised and seeded, scored by stratified k-fold cross-validated accuracy and
balanced accuracy on the evaluation split itself: a logistic regression (linear) and a small MLP
(non-linear). Erasure methods can bring the linear probe to chance while an MLP still recovers the
attribute, so both are reported beside the majority-class baseline. Fits run with one BLAS thread: on
a shared machine, threaded BLAS made the MLP ~10x slower.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

REPRESENTATION_SHAPE = "representation must be 2-D [n, d] with n = {n} rows, got shape {shape}."
REPRESENTATION_NOT_FINITE = "representation holds NaN or infinite values."
ONE_GROUP = "Leakage probe skipped: only one group ({group!r}) is present."
TOO_FEW_PER_GROUP = "Leakage probe skipped: group {group!r} has {count} row(s); cross-validation needs 2."
FEWER_FOLDS = "Leakage probe used {folds} folds instead of {asked}: group {group!r} has only {count} rows."


@dataclass(frozen=True)
class ProbeSettings:
    """Probe sizes; the defaults keep both probes near 1 s on 1,300 x 384 on one core."""

    folds: int = 5  # stratified k-fold; lowered to the smallest group's count when that is smaller
    linear_c: float = 1.0  # inverse L2 strength of the logistic regression
    linear_max_iter: int = 200
    mlp_hidden: tuple[int, ...] = (32,)  # one small hidden layer
    mlp_alpha: float = 1.0  # L2 penalty; sklearn divides it by the number of rows
    mlp_learning_rate: float = 1e-2  # adam; with 50 epochs, 1e-3 left the MLP under-trained (below linear)
    mlp_max_iter: int = 50  # epochs of adam: bounded, so the probe's cost is bounded


def _probes(settings: ProbeSettings, seed: int) -> dict[str, BaseEstimator]:
    return {
        "linear": make_pipeline(
            StandardScaler(), LogisticRegression(C=settings.linear_c, max_iter=settings.linear_max_iter)
        ),
        "mlp": make_pipeline(
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=settings.mlp_hidden,
                alpha=settings.mlp_alpha,
                learning_rate_init=settings.mlp_learning_rate,
                max_iter=settings.mlp_max_iter,
                random_state=seed,
            ),
        ),
    }


def leakage_probes(
    *, representation: np.ndarray, groups: np.ndarray, seed: int = 0, settings: ProbeSettings | None = None
) -> tuple[dict[str, object] | None, list[str]]:
    """Cross-validated probes predicting `groups` [n] from `representation` [n, d].

    Returns (result, warnings); result is None when the probes cannot run (one group, or a group with
    a single row), with the reason among the warnings.
    """
    settings = settings or ProbeSettings()
    groups = np.asarray(groups).astype(str)
    x = np.asarray(representation, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(groups):
        raise ValueError(REPRESENTATION_SHAPE.format(n=len(groups), shape=tuple(x.shape)))
    if not np.isfinite(x).all():
        raise ValueError(REPRESENTATION_NOT_FINITE)
    names, counts = np.unique(groups, return_counts=True)
    if len(names) < 2:
        return None, [ONE_GROUP.format(group=str(names[0]) if len(names) else None)]
    smallest = int(np.argmin(counts))
    if counts[smallest] < 2:
        return None, [TOO_FEW_PER_GROUP.format(group=str(names[smallest]), count=int(counts[smallest]))]
    notes: list[str] = []
    folds = min(settings.folds, int(counts[smallest]))
    if folds < settings.folds:
        notes.append(
            FEWER_FOLDS.format(
                folds=folds, asked=settings.folds, group=str(names[smallest]), count=int(counts[smallest])
            )
        )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probes: dict[str, dict[str, float]] = {}
    for name, estimator in _probes(settings, seed).items():
        started = time.perf_counter()
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bounded max_iter: convergence warnings are expected
            scores = cross_validate(estimator, x, groups, cv=cv, scoring=["accuracy", "balanced_accuracy"])
        probes[name] = {
            "accuracy": float(scores["test_accuracy"].mean()),
            "accuracy_std": float(scores["test_accuracy"].std()),
            "balanced_accuracy": float(scores["test_balanced_accuracy"].mean()),
            "seconds": round(time.perf_counter() - started, 3),
        }
        logger.debug("leakage probe %s: %s", name, probes[name])
    return {
        "n": len(groups),
        "dim": int(x.shape[1]),
        "folds": folds,
        "majority_baseline": float(counts.max() / counts.sum()),
        "chance_balanced_accuracy": 1.0 / len(names),
        "probes": probes,
        "settings": {**asdict(settings), "mlp_hidden": list(settings.mlp_hidden), "seed": seed},
    }, notes
