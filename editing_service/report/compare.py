"""Plain-language findings computed from the rows of a report.

The known criticism of SHIFT (on Bias in Bios, deleting the gendered tokens or ablating random features
then retraining debiases about as well) is answered with numbers: the SHIFT row (with retrained head if
present) is set against each baseline on group-balanced and worst-group accuracy, and a finding says
plainly when it does not beat one, or when a baseline was not run. A difference below `TIE` counts as
level, and whether the bootstrap intervals overlap is stated beside each verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

TIE = 0.005  # differences smaller than this are reported as level
TRAP_BY_GROUP = 0.05  # per-group accuracies this close look fair ...
TRAP_CELLS = 0.15  # ... while cells this far apart are not
SHIFT_ROWS = ("shift_retrained", "shift")
BASELINES = ("random_ablation", "token_deletion", "leace")
METRICS = {
    "group_balanced_accuracy": "group-balanced accuracy",
    "worst_group_accuracy": "worst-group accuracy",
}
TITLES = {
    "original": "the original model",
    "shift": "SHIFT (no retrain)",
    "shift_retrained": "SHIFT + retrained head",
    "random_ablation": "random ablation of as many features",
    "token_deletion": "deletion of the concept's tokens",
    "leace": "LEACE",
    "oracle": "the oracle head trained on group-balanced data",
}


ROW_ORDER = tuple(TITLES)  # the fixed order of rows in every report


def title(name: str) -> str:
    """A row's name as a phrase (its own name when it is not a standard row)."""
    return TITLES.get(name, name)


def _overlap(a: Mapping, b: Mapping, metric: str) -> bool | None:
    ia, ib = (a.get("intervals") or {}).get(metric), (b.get("intervals") or {}).get(metric)
    if ia is None or ib is None:
        return None
    return bool(ia[0] <= ib[1] and ib[0] <= ia[1])


def _versus(shift: Mapping, other: Mapping, metric: str) -> dict[str, object]:
    difference = float(shift[metric]) - float(other[metric])
    verdict = "level" if abs(difference) < TIE else ("better" if difference > 0 else "worse")
    return {
        "shift": shift[metric],
        "baseline": other[metric],
        "difference": difference,
        "verdict": verdict,
        "intervals_overlap": _overlap(shift, other, metric),
    }


def _sentence(shift_name: str, base: str, metric: str, entry: Mapping) -> str:
    numbers = f"{entry['shift']:.3f} vs {entry['baseline']:.3f}"
    overlap = entry["intervals_overlap"]
    noise = (
        ""
        if overlap is None
        else (
            "; the bootstrap intervals overlap, so the difference may be noise"
            if overlap
            else "; the bootstrap intervals do not overlap"
        )
    )
    who, what, against = title(shift_name), METRICS[metric], title(base)
    if entry["verdict"] == "better":
        return f"{who} beats {against} on {what} ({numbers}{noise})."
    if entry["verdict"] == "level":
        return f"{who} does not beat {against} on {what}: they are level ({numbers})."
    return f"{who} does NOT beat {against} on {what} ({numbers}{noise})."


def _change(rows: Mapping[str, Mapping], shift_name: str) -> str:
    a, b = rows["original"], rows[shift_name]
    parts = [f"{METRICS[m]} {a[m]:.3f} to {b[m]:.3f}" for m in METRICS]
    parts.append(f"overall accuracy {a['accuracy']:.3f} to {b['accuracy']:.3f}")
    if (
        a.get("protected_attribute_accuracy") is not None
        and b.get("protected_attribute_accuracy") is not None
    ):
        parts.append(
            f"protected-attribute accuracy {a['protected_attribute_accuracy']:.3f} to "
            f"{b['protected_attribute_accuracy']:.3f} (0.5 on a balanced set: no group signal)"
        )
    return f"From the original model to {title(shift_name)}: " + ", ".join(parts) + "."


def _against_oracle(shift: Mapping, oracle: Mapping, shift_name: str) -> str:
    parts = []
    for metric, what in METRICS.items():
        difference = float(shift[metric]) - float(oracle[metric])
        side = "level with" if abs(difference) < TIE else ("above" if difference > 0 else "below")
        parts.append(f"{what} {shift[metric]:.3f} vs {oracle[metric]:.3f} ({side} it)")
    return f"Against {title('oracle')}, {title(shift_name)} has " + "; ".join(parts) + "."


def _trap(rows: Sequence[Mapping]) -> list[str]:
    """One finding naming the rows whose per-group accuracies look equal while their cells do not."""
    hidden = []
    for row in rows:
        cells = [c["accuracy"] for c in row.get("cells", [])]
        if cells and row.get("by_group_gap", 1.0) < TRAP_BY_GROUP and max(cells) - min(cells) > TRAP_CELLS:
            hidden.append((row, max(cells) - min(cells)))
    if not hidden:
        return []
    attribute = hidden[0][0]["attribute"]
    names = ", ".join(r["name"] for r, _ in hidden)
    by_group = max(r["by_group_gap"] for r, _ in hidden)
    spread = max(s for _, s in hidden)
    return [
        f"In {len(hidden)} row(s) ({names}) accuracy by {attribute} differs by at most {by_group:.3f}, while "
        f"the best and worst (class, {attribute}) cells are up to {spread:.3f} apart: a single protected "
        "column hides the bias, so read worst-group accuracy and the cell tables."
    ]


def _leakage(row: Mapping) -> list[str]:
    leak = row.get("leakage")
    if not leak:
        return []
    linear, mlp, base = leak["probes"]["linear"], leak["probes"]["mlp"], leak["majority_baseline"]
    if linear["accuracy"] < base + 0.02 and mlp["accuracy"] > base + 0.05:
        return [
            f"In {title(row['name'])}, a linear probe is near the majority baseline ({linear['accuracy']:.3f} "
            f"vs {base:.3f}) but an MLP probe still recovers {row['attribute']} "
            f"({mlp['accuracy']:.3f}): the representation still carries it non-linearly."
        ]
    return []


def compare_rows(rows: Sequence[Mapping]) -> dict[str, object]:
    """Findings from rows named as in `TITLES`; returns {shift_row, versus, shift_beats_baselines, findings}."""
    by_name = {r["name"]: r for r in rows}
    shift_name = next((n for n in SHIFT_ROWS if n in by_name), None)
    findings: list[str] = []
    versus: dict[str, dict[str, dict]] = {}
    if shift_name is None:
        findings.append("No SHIFT row was evaluated, so nothing can be said about the edit.")
    else:
        if "original" in by_name:
            findings.append(_change(by_name, shift_name))
        for base in BASELINES:
            if base not in by_name:
                if base != "leace":
                    findings.append(
                        f"No {title(base)} baseline was run, so this report cannot say whether "
                        f"{title(shift_name)} beats it."
                    )
                continue
            versus[base] = {m: _versus(by_name[shift_name], by_name[base], m) for m in METRICS}
            findings += [_sentence(shift_name, base, m, e) for m, e in versus[base].items()]
        if "oracle" in by_name:
            findings.append(_against_oracle(by_name[shift_name], by_name["oracle"], shift_name))
    beats = None
    if versus:
        beats = all(e["verdict"] == "better" for v in versus.values() for e in v.values())
        findings.append(
            f"Overall, {title(shift_name)} beats every baseline that was run on both metrics."
            if beats
            else f"Overall, {title(shift_name)} does not beat every baseline that was run: see the findings above."
        )
    findings += _trap(rows)
    for row in rows:
        findings += _leakage(row)
    return {"shift_row": shift_name, "versus": versus, "shift_beats_baselines": beats, "findings": findings}
