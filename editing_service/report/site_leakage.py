"""Where the protected attribute flows: how well it is linearly decodable at every site, and from what.

For each site (with the classifier's interventions, if any, in place): the example's mean-pooled
activation, the mean-pooled SAE error term (x - SAE(x)) and the mean-pooled SAE reconstruction, plus the
head's input. Each is scored by a linear probe predicting the group *within each class* (so the label's
own correlation with the group does not count), cross-validated, as balanced accuracy averaged over the
classes: 0.5 is no leakage. The features that carry the attribute are ranked by their within-class
separation (min over classes of |AUROC - 0.5| of the example's max activation), flagged or not.

Run on the validate split: it is a diagnosis to choose levers by, not an evaluation.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from editing_service.features.groups import group_separation
from editing_service.model.batching import length_sorted_batches
from editing_service.model.classifier import TextClassifier, mean_pool
from editing_service.model.hooks import capture
from editing_service.sae import SAE

SCHEMA_VERSION = 1
HEAD_INPUT = "head.in"


class CarrierFeature(BaseModel):
    """A feature whose activation separates the groups within every class."""

    model_config = ConfigDict(extra="forbid")
    feature: int
    separation: float  # min over classes of |AUROC - 0.5|
    flagged: bool


class SiteLeakage(BaseModel):
    """Within-class balanced accuracy of a linear group probe on each pooled representation of a site."""

    model_config = ConfigDict(extra="forbid")
    site: str
    activation: float
    error: float | None = None  # None where the site has no SAE (the head's input)
    reconstruction: float | None = None
    carriers: list[CarrierFeature] = []
    n_flagged: int = 0
    n_carriers_flagged: int = 0
    n_carriers: int = 0  # features with separation >= the carrier threshold


class LeakageDiagnosis(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    attribute: str
    n: int
    carrier_threshold: float
    sites: list[SiteLeakage]


def within_class_probe(x: np.ndarray, groups: np.ndarray, labels: np.ndarray, *, folds: int = 5,
                       seed: int = 0, C: float = 1.0) -> float:
    """Mean over classes of the cross-validated balanced accuracy of a linear probe for the group."""
    scores = []
    for c in np.unique(labels):
        rows = labels == c
        y = groups[rows]
        names, counts = np.unique(y, return_counts=True)
        if len(names) < 2 or counts.min() < 2:
            continue
        cv = StratifiedKFold(n_splits=min(folds, int(counts.min())), shuffle=True, random_state=seed)
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500))
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores.append(cross_val_score(probe, x[rows], y, cv=cv, scoring="balanced_accuracy").mean())
    return float(np.mean(scores)) if scores else float("nan")


@torch.inference_mode()
def pooled_site_views(
    classifier: TextClassifier, saes: Mapping[str, SAE], texts: list[str], *, batch_size: int = 32,
) -> dict[str, dict[str, np.ndarray]]:
    """Per site: mean-pooled activation, error and reconstruction [n, d] and max-pooled codes [n, d_sae];
    and the head's input under `HEAD_INPUT`. The classifier's interventions stay in place."""
    sites = classifier.resolve_sites(list(saes))
    out: dict[str, dict[str, np.ndarray]] = {s.name: {} for s in sites} | {HEAD_INPUT: {}}
    n = len(texts)
    for rows, batch in length_sorted_batches(classifier.tokenizer, texts, batch_size=batch_size,
                                             max_length=classifier.max_length):
        batch = batch.to(classifier.device)
        mask = batch["attention_mask"]
        with capture(classifier.backbone, sites) as store:
            head_in, _ = classifier.head_features(batch["input_ids"], mask)
        tokens = classifier.token_mask(mask)
        views = {HEAD_INPUT: {"activation": head_in}}
        for site in sites:
            sae = saes[site.name]
            x = store[site.name].float()
            codes = sae.encode(x.to(sae.W_enc.dtype))
            recon = sae.decode(codes).to(x.dtype)
            keep = tokens.unsqueeze(-1)
            views[site.name] = {
                "activation": mean_pool(x, tokens), "error": mean_pool(x - recon, tokens),
                "reconstruction": mean_pool(recon, tokens),
                "codes": torch.where(keep, codes.float(), torch.zeros((), device=x.device)).amax(1),
            }
        for name, tensors in views.items():
            for kind, tensor in tensors.items():
                if kind not in out[name]:
                    out[name][kind] = np.zeros((n, tensor.shape[-1]), dtype=np.float32)
                out[name][kind][rows] = tensor.float().cpu().numpy()
    return out


def diagnose_leakage(
    classifier: TextClassifier, saes: Mapping[str, SAE], texts: list[str], *, labels: np.ndarray,
    groups: np.ndarray, label_names: Sequence[str], attribute: str,
    flagged: Mapping[str, Sequence[int]] | None = None, carrier_threshold: float = 0.2, top: int = 10,
    batch_size: int = 32, seed: int = 0,
) -> LeakageDiagnosis:
    """Per-site leakage of `attribute` on `texts` (their `labels` and `groups`), with the classifier's
    current interventions in place; `flagged` ({site: features}) marks which carriers the edit covers."""
    flagged = {site: set(int(f) for f in features) for site, features in (flagged or {}).items()}
    labels, groups = np.asarray(labels), np.asarray(groups).astype(str)
    views = pooled_site_views(classifier, saes, texts, batch_size=batch_size)
    results = []
    for name, view in views.items():
        probe = {kind: within_class_probe(view[kind], groups, labels, seed=seed)
                 for kind in ("activation", "error", "reconstruction") if kind in view}
        entry = SiteLeakage(site=name, **probe)
        if "codes" in view:
            codes = view["codes"]
            live = np.flatnonzero((codes > 0).any(0))
            separations = []
            for feature in live:
                sep = group_separation(codes[:, feature], labels=labels, groups=groups, label_names=label_names,
                                       attribute=attribute).separation
                separations.append(sep if sep is not None else 0.0)
            separations = np.asarray(separations)
            mine = flagged.get(name, set())
            carriers = live[separations >= carrier_threshold]
            ranked = np.argsort(-separations, kind="stable")[:top]
            entry.carriers = [CarrierFeature(feature=int(live[i]), separation=round(float(separations[i]), 4),
                                             flagged=int(live[i]) in mine) for i in ranked]
            entry.n_flagged = len(mine)
            entry.n_carriers = int(carriers.size)
            entry.n_carriers_flagged = int(sum(int(f) in mine for f in carriers))
        results.append(entry)
    return LeakageDiagnosis(attribute=attribute, n=len(texts), carrier_threshold=carrier_threshold, sites=results)
