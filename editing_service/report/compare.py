"""Plain-language findings computed from the rows of a report.

The known criticism of SHIFT (on Bias in Bios, deleting the gendered tokens or ablating random features
then retraining debiases about as well) is answered with numbers: the SHIFT row (with retrained head if
present) is set against every other row on group-balanced and worst-group accuracy, and the findings say
plainly which rows it beats and which it does not. Rows say what they are (`role`: reference, edit or
baseline), so a newly registered baseline is compared without any change here. A difference below `TIE`
counts as level, and whether the bootstrap intervals overlap is stated beside each verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

from editing_service.report.schema import Comparison, Row, Versus

TIE = 0.005  # differences smaller than this are reported as level
TRAP_BY_GROUP = 0.05  # per-group accuracies this close look fair ...
TRAP_CELLS = 0.15  # ... while cells this far apart are not
SHIFT_ROWS = ("shift_retrained", "shift")
METRICS = {
    "group_balanced_accuracy": "group-balanced accuracy",
    "worst_group_accuracy": "worst-group accuracy",
}


def _overlap(a: Row, b: Row, metric: str) -> bool | None:
    ia, ib = a.intervals.of(metric), b.intervals.of(metric)
    if ia is None or ib is None:
        return None
    return bool(ia[0] <= ib[1] and ib[0] <= ia[1])


def versus(shift: Row, other: Row, metric: str) -> Versus:
    a, b = float(getattr(shift, metric)), float(getattr(other, metric))
    difference = a - b
    verdict = "level" if abs(difference) < TIE else ("better" if difference > 0 else "worse")
    return Versus(shift=a, baseline=b, difference=difference, verdict=verdict,
                  intervals_overlap=_overlap(shift, other, metric))


def _sentence(shift: Row, other: Row, metric: str, entry: Versus) -> str:
    numbers = f"{entry.shift:.3f} vs {entry.baseline:.3f}"
    overlap = entry.intervals_overlap
    noise = (
        ""
        if overlap is None
        else (
            "; the bootstrap intervals overlap, so the difference may be noise"
            if overlap
            else "; the bootstrap intervals do not overlap"
        )
    )
    who, what, against = shift.phrase, METRICS[metric], other.phrase
    if entry.verdict == "better":
        return f"{who} beats {against} on {what} ({numbers}{noise})."
    if entry.verdict == "level":
        return f"{who} does not beat {against} on {what}: they are level ({numbers})."
    return f"{who} does NOT beat {against} on {what} ({numbers}{noise})."


def _change(original: Row, shift: Row) -> str:
    parts = [f"{METRICS[m]} {getattr(original, m):.3f} to {getattr(shift, m):.3f}" for m in METRICS]
    parts.append(f"overall accuracy {original.accuracy:.3f} to {shift.accuracy:.3f}")
    if original.protected_attribute_accuracy is not None and shift.protected_attribute_accuracy is not None:
        parts.append(
            f"protected-attribute accuracy {original.protected_attribute_accuracy:.3f} to "
            f"{shift.protected_attribute_accuracy:.3f} (0.5 on a balanced set: no group signal)"
        )
    return f"From {original.phrase} to {shift.phrase}: " + ", ".join(parts) + "."


def _trap(rows: Sequence[Row]) -> list[str]:
    """One finding naming the rows whose per-group accuracies look equal while their cells do not."""
    hidden = []
    for row in rows:
        cells = [c.accuracy for c in row.cells]
        if cells and row.by_group_gap < TRAP_BY_GROUP and max(cells) - min(cells) > TRAP_CELLS:
            hidden.append((row, max(cells) - min(cells)))
    if not hidden:
        return []
    attribute = hidden[0][0].attribute
    names = ", ".join(r.name for r, _ in hidden)
    by_group = max(r.by_group_gap for r, _ in hidden)
    spread = max(s for _, s in hidden)
    return [
        f"In {len(hidden)} row(s) ({names}) accuracy by {attribute} differs by at most {by_group:.3f}, while "
        f"the best and worst (class, {attribute}) cells are up to {spread:.3f} apart: a single protected "
        "column hides the bias, so read worst-group accuracy and the cell tables."
    ]


def _leakage(row: Row) -> list[str]:
    leak = row.leakage
    if leak is None:
        return []
    linear, mlp, base = leak.probes["linear"], leak.probes["mlp"], leak.majority_baseline
    if linear.accuracy < base + 0.02 and mlp.accuracy > base + 0.05:
        return [
            f"In {row.phrase}, a linear probe is near the majority baseline ({linear.accuracy:.3f} "
            f"vs {base:.3f}) but an MLP probe still recovers {row.attribute} "
            f"({mlp.accuracy:.3f}): the representation still carries it non-linearly."
        ]
    return []


def _scoreboard(shift: Row, table: dict[str, dict[str, Versus]], by_name: dict[str, Row]) -> tuple[
    list[str], list[str], str
]:
    beats = [n for n, v in table.items() if all(e.verdict == "better" for e in v.values())]
    not_beaten = [n for n in table if n not in beats]
    phrase = lambda names: ", ".join(by_name[n].phrase for n in names) or "none"  # noqa: E731
    sentence = (
        f"In short, on both group-balanced and worst-group accuracy {shift.phrase} beats: {phrase(beats)}; "
        f"it does not beat: {phrase(not_beaten)}."
    )
    return beats, not_beaten, sentence


def compare_rows(rows: Sequence[Row]) -> Comparison:
    """Findings: the SHIFT row against every other row; which it beats on both metrics and which not."""
    by_name = {r.name: r for r in rows}
    shift_name = next((n for n in SHIFT_ROWS if n in by_name), None)
    findings: list[str] = []
    table: dict[str, dict[str, Versus]] = {}
    beats: list[str] = []
    not_beaten: list[str] = []
    baselines_beaten = None
    if shift_name is None:
        findings.append("No SHIFT row was evaluated, so nothing can be said about the edit.")
    else:
        shift = by_name[shift_name]
        if "original" in by_name:
            findings.append(_change(by_name["original"], shift))
        for other in rows:
            if other.name == shift_name:
                continue
            table[other.name] = {m: versus(shift, other, m) for m in METRICS}
            if other.role == "baseline" or other.name == "oracle":
                findings += [_sentence(shift, other, m, e) for m, e in table[other.name].items()]
        baselines = [r.name for r in rows if r.role == "baseline"]
        if not baselines:
            findings.append(f"No baseline was run, so this report cannot say whether {shift.phrase} beats one.")
        else:
            baselines_beaten = all(e.verdict == "better" for n in baselines for e in table[n].values())
            findings.append(
                f"Overall, {shift.phrase} beats every baseline that was run on both metrics."
                if baselines_beaten
                else f"Overall, {shift.phrase} does not beat every baseline that was run: see the findings above."
            )
        beats, not_beaten, sentence = _scoreboard(shift, table, by_name)
        findings.append(sentence)
    findings += _trap(rows)
    for row in rows:
        findings += _leakage(row)
    return Comparison(shift_row=shift_name, versus=table, shift_beats_baselines=baselines_beaten,
                      beats=beats, does_not_beat=not_beaten, findings=findings)
