"""The bias and accuracy report: provenance, the flags and how they were chosen, rows, findings, limits.

`build_report` takes plain dicts and lists (what the pipeline has at hand) and returns one
JSON-serialisable dict, written as report.json and rendered by `render_html` and `model_card`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from editing_service.report.compare import BASELINES, ROW_ORDER, compare_rows
from editing_service.report.compare import title as row_title

REPORT_VERSION = 1
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


def order_rows(rows: Sequence[Mapping]) -> list[Mapping]:
    """Standard rows in `ROW_ORDER`, then any others in the order given; refuses duplicate names."""
    names = [r["name"] for r in rows]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(DUPLICATE_ROW.format(name=name))
    rank = {name: i for i, name in enumerate(ROW_ORDER)}
    return sorted(rows, key=lambda r: rank.get(r["name"], len(ROW_ORDER)))  # stable for the others


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


def default_limitations(*, attribute: str, rows: Sequence[Mapping], dataset: Mapping) -> list[str]:
    """What the numbers do not cover, from the attribute, the rows present and the dataset."""
    groups = sorted({g for r in rows for g in r.get("groups", [])})
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
    n = rows[0].get("n")
    out.append(
        f"Evaluated on one dataset ({dataset.get('name', 'unnamed')}, {n} rows); other occupations, "
        "domains and distribution shifts were not tested."
    )
    names = {r["name"] for r in rows}
    missing = [row_title(b) for b in ("original", "shift_retrained", *BASELINES, "oracle") if b not in names]
    if missing:
        out.append("Not run in this report: " + "; ".join(missing) + ".")
    if any(r.get("leakage") for r in rows):
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
    rows: Sequence[Mapping],
    flags: Sequence[Mapping],
    sae: Mapping | None = None,
    retrain: Mapping | None = None,
    flag_policy: str | None = None,
    flag_selection_subset: str | None = None,
    limitations: Sequence[str] = (),
    created_at: str | None = None,
) -> dict[str, object]:
    """The report dict.

    `dataset`: name, subsets ({role: subset}), sha256, ...; `model`: base_model, sha256 or revision,
    classifier_kind, edited_model_id, ...; `rows`: from `evaluate_row`; `flags`: {site, feature, label,
    who, why, source}; `sae`: settings and quality summary; `retrain`: head settings and seed;
    `flag_policy`: a sentence saying how the flags were chosen (default: written from the flags' sources);
    `flag_selection_subset`: the subset the flags were chosen on (checked against the evaluation subset).
    """
    if not rows:
        raise ValueError(NO_ROWS)
    ordered = order_rows(rows)
    attribute = ordered[0]["attribute"]
    for row in ordered:
        if row["attribute"] != attribute:
            raise ValueError(ROWS_DIFFER.format(name=row["name"], got=row["attribute"], expected=attribute))
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
        warnings += [f"[{row['name']}] {w}" for w in row.get("warnings", [])]
    return {
        "version": REPORT_VERSION,
        "title": title,
        "created_at": created_at or datetime.now(UTC).isoformat(timespec="seconds"),
        "attribute": attribute,
        "label_names": list(ordered[0]["label_names"]),
        "dataset": {
            "name": dataset.get("name"),
            "subsets": subsets,
            "sha256": dataset.get("sha256"),
            **{k: v for k, v in dataset.items() if k not in ("name", "subsets", "sha256")},
        },
        "model": dict(model),
        "sae": dict(sae) if sae is not None else None,
        "retrain": dict(retrain) if retrain is not None else None,
        "flags": flag_list,
        "flag_policy": policy,
        "rows": [dict(r) for r in ordered],
        "comparison": compare_rows(ordered),
        "limitations": default_limitations(attribute=attribute, rows=ordered, dataset=dataset)
        + list(limitations),
        "warnings": list(dict.fromkeys(warnings)),
    }
