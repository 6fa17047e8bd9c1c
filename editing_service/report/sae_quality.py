"""The quality report of a set of SAEs: FVU, L0 and dead fraction, and the classifier's accuracy
with each SAE's reconstruction spliced in (with and without the error term)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from editing_service.activations import ActivationCache
from editing_service.data import TextSplit
from editing_service.model import Site, TextClassifier
from editing_service.report.metrics import group_accuracy
from editing_service.sae import sae_quality
from editing_service.sae.splice import Dictionary, splice


def _score(classifier: TextClassifier, split: TextSplit, attribute: str | None, batch_size: int) -> tuple:
    proba = classifier.predict_proba(split.texts, batch_size=batch_size)
    summary = group_accuracy(
        y_true=split.labels, y_pred=proba.argmax(1), groups=split.groups.get(attribute) if attribute else None,
        label_names=split.label_names,
    )
    return proba, summary


def _headline(summary: dict) -> dict[str, float]:
    return {k: summary[k] for k in ("accuracy", "group_balanced_accuracy", "worst_group_accuracy")}


def sae_quality_report(
    classifier: TextClassifier,
    saes: Mapping[Site, Dictionary],
    *,
    train_cache: ActivationCache,
    validate: TextSplit,
    validate_cache: ActivationCache,
    attribute: str | None,
    batch_size: int = 32,
    splice_check: bool = True,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, object]:
    """Per-site quality; accuracies are on `validate`, grouped by `attribute` when given."""
    original_proba, original = _score(classifier, validate, attribute, batch_size)
    sites: dict[str, dict[str, object]] = {}
    for i, (site, sae) in enumerate(saes.items()):
        entry: dict[str, object] = {
            "train": sae_quality(sae, train_cache.site(site.name)),
            "validate": sae_quality(sae, validate_cache.site(site.name)),
        }
        if splice_check:
            with splice(classifier.backbone, {site: sae}, keep_error=True):
                proba_err, with_error = _score(classifier, validate, attribute, batch_size)
            with splice(classifier.backbone, {site: sae}, keep_error=False):
                _, without_error = _score(classifier, validate, attribute, batch_size)
            entry["spliced_with_error"] = {
                **_headline(with_error),
                "same_predictions": bool((proba_err.argmax(1) == original_proba.argmax(1)).all()),
                "max_abs_probability_change": float(np.abs(proba_err - original_proba).max()),
            }
            entry["spliced_without_error"] = _headline(without_error)
            entry["group_balanced_accuracy_drop"] = (
                original["group_balanced_accuracy"] - without_error["group_balanced_accuracy"]
            )
        sites[site.name] = entry
        if progress is not None:
            progress("sae_quality", (i + 1) / len(saes))
    return {
        "validate_subset": validate.name,
        "group_attribute": attribute,
        "original": {**_headline(original), "cells": original["cells"]},
        "sites": sites,
    }
