"""The bias and accuracy report: provenance, the flags and how they were chosen, rows, findings, limits.

`build_report` takes the scored rows (`Row`), the rows not run (`SkippedRow`) and plain provenance
(what the pipeline has at hand), and returns one typed `Report`, written as report.json and rendered by
`render_html` and `model_card`. Rows keep the order given (the row registry's order).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from editing_service.report.compare import compare_rows
from editing_service.report.schema import (
    BudgetCurve,
    DatasetInfo,
    FlagPolicy,
    ModelInfo,
    Report,
    Row,
    SeedSummary,
    SkippedRow,
)
from editing_service.report.schema import Flag as ReportFlag

FLAG_SOURCES = {
    "person": "a person reviewing the feature cards",
    "protected_attribute": "a protected-attribute suggestion (features separating the groups)",
    "lexicon": "a concept lexicon (features whose activation falls on listed words)",
}
GENDER_ATTRIBUTES = ("gender", "sex")

NO_ROWS = "A report needs at least one row."
DUPLICATE_ROW = "Row name {name!r} appears more than once."
ROWS_DIFFER = (
    "Every row must report on the same attribute; row {name!r} has {got!r}, the first has {expected!r}."
)
FLAG_MISSING = "Flag {index} lacks {field!r}; each flag needs 'site' and 'feature'."
FLAG_NO_WHO = "Flag {site}/{feature} does not say who flagged it."
FLAG_NO_WHY = "Flag {site}/{feature} has no rationale."
FLAGS_ON_EVALUATION = (
    "Flags were chosen on {subset!r}, the evaluation subset itself: the edited rows' numbers are optimistic."
)


def check_unique(rows: Sequence[Row]) -> None:
    """Refuses two rows of the same name."""
    names = [r.name for r in rows]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(DUPLICATE_ROW.format(name=name))


def normalise_flags(flags: Sequence[Mapping]) -> tuple[list[dict], list[str]]:
    """Flags as {site, feature, label, who, why, source} (`rationale` is read as `why`); plus warnings."""
    out, notes = [], []
    for i, flag in enumerate(flags):
        for field in ("site", "feature"):
            if field not in flag:
                raise ValueError(FLAG_MISSING.format(index=i, field=field))
        entry = {
            "site": str(flag["site"]),
            "feature": int(flag["feature"]),
            "label": flag.get("label"),
            "who": flag.get("who"),
            "why": flag.get("why", flag.get("rationale")),
            "source": flag.get("source", "person"),
        }
        if not entry["who"]:
            notes.append(FLAG_NO_WHO.format(**entry))
        if not entry["why"]:
            notes.append(FLAG_NO_WHY.format(**entry))
        out.append(entry)
    return out, notes


def describe_flag_policy(
    flags: Sequence[Mapping],
    *,
    statement: str | None,
    selection_subset: str | None,
    evaluation_subset: str | None,
) -> tuple[dict[str, object], list[str]]:
    """How the flags were chosen, in a sentence, with the count per source; plus warnings."""
    counts = Counter(str(f["source"]) for f in flags)
    if statement is None:
        if not flags:
            statement = "No features were flagged."
        else:
            how = "; ".join(f"{n} by {FLAG_SOURCES.get(s, repr(s))}" for s, n in sorted(counts.items()))
            statement = f"The {len(flags)} ablated feature(s) were flagged: {how}."
        statement += (
            f" They were chosen on the {selection_subset!r} subset."
            if selection_subset
            else " The subset they were chosen on was not recorded."
        )
    on_evaluation = bool(selection_subset and selection_subset == evaluation_subset)
    notes = [FLAGS_ON_EVALUATION.format(subset=selection_subset)] if on_evaluation else []
    return {
        "statement": statement,
        "sources": dict(sorted(counts.items())),
        "selection_subset": selection_subset,
        "evaluation_subset": evaluation_subset,
        "chosen_on_evaluation_split": on_evaluation,
    }, notes


def default_limitations(
    *, attribute: str, rows: Sequence[Row], skipped: Sequence[SkippedRow], dataset: Mapping
) -> list[str]:
    """What the numbers do not cover, from the attribute, the rows present and skipped, and the dataset."""
    groups = sorted({g for r in rows for g in r.groups})
    out = []
    if attribute.lower() in GENDER_ATTRIBUTES:
        out.append(
            f"Gender is binary here ({', '.join(groups)}) and inferred from pronouns in the texts, as in "
            "Bias in Bios; it is not self-reported, and people outside the binary are not represented."
        )
    else:
        out.append(f"Only the groups of {attribute!r} present in the data ({', '.join(groups)}) were tested.")
    out.append("English text only: the classifier and the edit were not tested on any other language.")
    out.append(
        f"Only the protected attribute {attribute!r} was tested; other attributes (for example race or "
        "age) and their intersections were not."
    )
    n = rows[0].n
    out.append(
        f"Evaluated on one dataset ({dataset.get('name', 'unnamed')}, {n} rows); other occupations, "
        "domains and distribution shifts were not tested."
    )
    if skipped:
        out.append("Not run in this report: " + "; ".join(f"{s.title} ({s.reason})" for s in skipped) + ".")
    if any(r.leakage for r in rows):
        out.append(
            "Leakage is measured by a linear and a small MLP probe; a stronger probe may recover more."
        )
    else:
        out.append(
            "No leakage probe was run: whether the representation still encodes the attribute is untested."
        )
    out.append(
        "Token deletion removes a fixed word list; signals not carried by fixed words (names, writing "
        "style) were not tested separately."
    )
    return out


def build_report(
    *,
    title: str,
    dataset: Mapping,
    model: Mapping,
    rows: Sequence[Row],
    flags: Sequence[Mapping],
    skipped_rows: Sequence[SkippedRow] = (),
    budget_curve: BudgetCurve | None = None,
    seeds: SeedSummary | None = None,
    sae: Mapping | None = None,
    retrain: Mapping | None = None,
    flag_policy: str | None = None,
    flag_selection_subset: str | None = None,
    limitations: Sequence[str] = (),
    created_at: str | None = None,
) -> Report:
    """The report.

    `dataset`: name, subsets ({role: subset}), sha256, ...; `model`: base_model, sha256 or revision,
    classifier_kind, edited_model_id, ...; `rows`: from `evaluate_row`, in the order shown;
    `skipped_rows`: registered rows not run, with why; `budget_curve`, `seeds`: see the schema; `flags`: {site, feature, label,
    who, why, source}; `sae`: settings and quality summary; `retrain`: head settings and seed;
    `flag_policy`: a sentence saying how the flags were chosen (default: written from the flags' sources);
    `flag_selection_subset`: the subset the flags were chosen on (checked against the evaluation subset).
    """
    if not rows:
        raise ValueError(NO_ROWS)
    check_unique(rows)
    ordered = list(rows)
    attribute = ordered[0].attribute
    for row in ordered:
        if row.attribute != attribute:
            raise ValueError(ROWS_DIFFER.format(name=row.name, got=row.attribute, expected=attribute))
    flag_list, warnings = normalise_flags(flags)
    subsets = dict(dataset.get("subsets") or {})
    policy, notes = describe_flag_policy(
        flag_list,
        statement=flag_policy,
        selection_subset=flag_selection_subset,
        evaluation_subset=subsets.get("evaluate"),
    )
    warnings = notes + warnings
    for row in ordered:
        warnings += [f"[{row.name}] {w}" for w in row.warnings]
    return Report(
        title=title,
        created_at=created_at or datetime.now(UTC).isoformat(timespec="seconds"),
        attribute=attribute,
        label_names=list(ordered[0].label_names),
        dataset=DatasetInfo.model_validate({**dataset, "subsets": subsets}),
        model=ModelInfo.model_validate(dict(model)),
        sae=dict(sae) if sae is not None else None,
        retrain=dict(retrain) if retrain is not None else None,
        flags=[ReportFlag.model_validate(f) for f in flag_list],
        flag_policy=FlagPolicy.model_validate(policy),
        rows=ordered,
        skipped_rows=list(skipped_rows),
        comparison=compare_rows(ordered),
        budget_curve=budget_curve,
        seeds=seeds,
        limitations=default_limitations(attribute=attribute, rows=ordered, skipped=skipped_rows, dataset=dataset)
        + list(limitations),
        warnings=list(dict.fromkeys(warnings)),
    )
