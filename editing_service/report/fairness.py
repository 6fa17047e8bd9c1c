"""Fairness gaps between the groups of one protected attribute, computed with fairlearn.

Conventions (each is also written into the returned dict, so a report states it):

- fairlearn's difference metrics need a positive class. Every class is scored one-vs-rest (y == c). For
  two classes the headline numbers are those of class 1 (the positive class); for more classes they are
  the maximum over the classes (the worst one-vs-rest gap).
- TPR gap of class c = TPR(first group) - TPR(second group), groups in sorted order unless `gap_order`
  names them (Bias in Bios: F - M); with more than two groups it is max - min (unsigned). Its root mean
  square over classes is the Bias in Bios summary.
- Four-fifths rule: per class, the ratio of the lowest to the highest group selection rate
  (P(y_pred = c | group)); flagged when any class's ratio is below 0.8.
- Protected-attribute accuracy: how often the prediction equals the class the stereotype gives the
  row's group; 0.5 on a balanced set means the predictions carry no information about the group.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from fairlearn.metrics import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
)

FOUR_FIFTHS = 0.8
BAD_GAP_ORDER = "gap_order must name two groups present in the data {available}, got {order!r}."
STEREOTYPE_LENGTH = "stereotype has {n_stereo} entries but y_pred has {n_pred}."
UNDEFINED_RATES = (
    "Class {label!r}: some group has no rows of this class or none of the others, so its equalized-odds "
    "and equal-opportunity gaps are undefined and left out."
)


def protected_attribute_accuracy(
    *, y_pred: np.ndarray, stereotype: Sequence[int] | np.ndarray, cells: np.ndarray | None = None,
) -> float | None:
    """How often the prediction is the stereotyped class of the row's group (rows marked -1 skipped).

    With `cells` (one (class, group) key per row), the mean over cells of that share: the convention of
    Marks et al. (2024), where each (class, group) cell weighs the same as on a balanced test set, so 0.5
    means the predictions carry no group signal whatever the cell sizes.
    """
    stereotype = np.asarray(stereotype, dtype=np.int64).reshape(-1)
    if len(stereotype) != len(y_pred):
        raise ValueError(STEREOTYPE_LENGTH.format(n_stereo=len(stereotype), n_pred=len(y_pred)))
    known = stereotype >= 0
    if not known.any():
        return None
    hits = y_pred[known] == stereotype[known]
    if cells is None:
        return float(hits.mean())
    keys = np.asarray(cells)[known]
    return float(np.mean([hits[keys == key].mean() for key in np.unique(keys)]))


def _gap_groups(names: list[str], gap_order: Sequence[str] | None) -> list[str] | None:
    if gap_order is None:
        return names if len(names) == 2 else None
    order = [str(g) for g in gap_order]
    if len(order) != 2 or order[0] == order[1] or not set(order) <= set(names):
        raise ValueError(BAD_GAP_ORDER.format(available=names, order=list(gap_order)))
    return order


def _finite(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _ratio(selection: dict[str, float | None]) -> float:
    """Lowest over highest group selection rate; 1.0 when no group is selected at all."""
    rates = [r for r in selection.values() if r is not None]
    return min(rates) / max(rates) if max(rates) > 0 else 1.0


def _rate(mask: np.ndarray, hits: np.ndarray) -> float | None:
    return float(hits[mask].mean()) if mask.any() else None


def _class_gaps(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, names: list[str]) -> dict:
    """One class, one-vs-rest: y_true and y_pred are 0/1 here."""
    selection = {g: _rate(groups == g, y_pred == 1) for g in names}
    tpr = {g: _rate((groups == g) & (y_true == 1), y_pred == 1) for g in names}
    fpr = {g: _rate((groups == g) & (y_true == 0), y_pred == 1) for g in names}
    defined = all(v is not None for v in (*tpr.values(), *fpr.values()))
    kwargs = {"sensitive_features": groups}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on groups without positives; handled via `defined`
        out = {
            "selection_rate": selection,
            "true_positive_rate": tpr,
            "false_positive_rate": fpr,
            "demographic_parity_difference": _finite(demographic_parity_difference(y_true, y_pred, **kwargs)),
            "selection_rate_ratio": _ratio(selection),
            "equalized_odds_difference": (
                _finite(equalized_odds_difference(y_true, y_pred, **kwargs)) if defined else None
            ),
            "equal_opportunity_difference": (
                _finite(equal_opportunity_difference(y_true, y_pred, **kwargs)) if defined else None
            ),
        }
    return out


def _headline(per_class: dict[str, dict], key: str, label_names: Sequence[str]) -> float | None:
    if len(label_names) == 2:
        return per_class[label_names[1]][key]
    values = [v[key] for v in per_class.values() if v[key] is not None]
    return max(values) if values else None


def fairness_gaps(
    *,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    label_names: Sequence[str],
    gap_order: Sequence[str] | None = None,
) -> tuple[dict[str, object], list[str]]:
    """Gaps between the groups of one attribute; returns (gaps, warnings). Inputs are already checked."""
    groups = np.asarray(groups).astype(str)
    names = sorted(set(groups.tolist()))
    order = _gap_groups(names, gap_order)
    notes: list[str] = []
    per_class: dict[str, dict] = {}
    for label, label_name in enumerate(label_names):
        per_class[label_name] = _class_gaps(
            (y_true == label).astype(int), (y_pred == label).astype(int), groups, names
        )
        if per_class[label_name]["equalized_odds_difference"] is None:
            notes.append(UNDEFINED_RATES.format(label=label_name))
    tpr_gaps: dict[str, float | None] = {}
    for label_name, entry in per_class.items():
        tpr = entry["true_positive_rate"]
        if order is not None:
            a, b = tpr[order[0]], tpr[order[1]]
            tpr_gaps[label_name] = None if a is None or b is None else a - b
        else:
            known = [v for v in tpr.values() if v is not None]
            tpr_gaps[label_name] = max(known) - min(known) if len(known) >= 2 else None
    known_gaps = np.array([g for g in tpr_gaps.values() if g is not None], dtype=float)
    ratios = {k: v["selection_rate_ratio"] for k, v in per_class.items()}
    min_ratio = min(ratios.values())
    two = len(label_names) == 2
    gaps = {
        "groups": names,
        "aggregation": f"positive class {label_names[1]!r}" if two else "max over one-vs-rest classes",
        "demographic_parity_difference": _headline(per_class, "demographic_parity_difference", label_names),
        "equalized_odds_difference": _headline(per_class, "equalized_odds_difference", label_names),
        "equal_opportunity_difference": _headline(per_class, "equal_opportunity_difference", label_names),
        "tpr_gap": {
            "definition": f"TPR({order[0]}) - TPR({order[1]})" if order else "max - min TPR over groups",
            "order": order,
            "per_class": tpr_gaps,
            "rms": float(np.sqrt(np.mean(known_gaps**2))) if known_gaps.size else None,
        },
        "four_fifths": {
            "threshold": FOUR_FIFTHS,
            "per_class": ratios,
            "min_ratio": min_ratio,
            "violated": bool(min_ratio < FOUR_FIFTHS),
        },
        "per_class": per_class,
    }
    return gaps, notes
