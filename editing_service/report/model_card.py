"""A Hugging Face model card (README.md) for the edited model, from a report.

Built with `huggingface_hub.ModelCard` / `ModelCardData` / `EvalResult` (no network): the edited
model's row becomes the `model-index` results, worst-group accuracy and the fairness gaps among them; the
ablated features, who flagged them and why, sit under "Model Examination"; the report's limitations and
findings under "Bias, Risks, and Limitations". Text from data is escaped for Markdown tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from editing_service.report.compare import SHIFT_ROWS
from editing_service.report.schema import Report, Row

UNKNOWN_ROW = "The report has no row {row!r}; its rows are: {available}."
RESULTS = (  # (metric type, display name, how to read it from a row)
    ("accuracy", "Accuracy", lambda r: r.accuracy),
    ("group_balanced_accuracy", "Group-balanced accuracy", lambda r: r.group_balanced_accuracy),
    ("worst_group_accuracy", "Worst-group accuracy", lambda r: r.worst_group_accuracy),
    ("protected_attribute_accuracy", "Protected-attribute accuracy", lambda r: r.protected_attribute_accuracy),
    (
        "demographic_parity_difference",
        "Demographic parity difference",
        lambda r: r.fairness.demographic_parity_difference,
    ),
    ("equalized_odds_difference", "Equalized odds difference", lambda r: r.fairness.equalized_odds_difference),
    (
        "equal_opportunity_difference",
        "Equal opportunity difference",
        lambda r: r.fairness.equal_opportunity_difference,
    ),
    ("tpr_gap_rms", "TPR gap (RMS over classes)", lambda r: r.fairness.tpr_gap.rms),
    (
        "leakage_linear_probe_accuracy",
        "Leakage: linear probe accuracy",
        lambda r: r.leakage.probes["linear"].accuracy if r.leakage else None,
    ),
    (
        "leakage_mlp_probe_accuracy",
        "Leakage: MLP probe accuracy",
        lambda r: r.leakage.probes["mlp"].accuracy if r.leakage else None,
    ),
)


def _md(value: object) -> str:
    """Escape text for Markdown: no raw HTML (& and <), no table breaks (| and newlines)."""
    if value is not None and not isinstance(value, str | int | float):
        value = json.dumps(value, default=str)
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|").replace("\n", " ")


def _bullets(items: Iterable[object]) -> str:
    return "\n".join(f"- {_md(item)}" for item in items)


def _fields(data: Mapping | None) -> str:
    if not data:
        return "Not recorded."
    return "\n".join(f"- **{_md(key)}**: {_md(value)}" for key, value in data.items())


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _pick_row(report: Report, row: str | None) -> Row:
    by_name = {r.name: r for r in report.rows}
    if row is None:
        row = next((n for n in SHIFT_ROWS if n in by_name), report.rows[0].name)
    if row not in by_name:
        raise ValueError(UNKNOWN_ROW.format(row=row, available=list(by_name)))
    return by_name[row]


def _eval_results(report: Report, row: Row) -> list[EvalResult]:
    dataset = report.dataset
    common = {
        "task_type": "text-classification",
        "dataset_type": str(dataset.hub_id or dataset.name or "dataset"),
        "dataset_name": str(dataset.name or "dataset"),
        "dataset_split": dataset.subsets.get("evaluate"),
        "dataset_revision": dataset.sha256,
    }
    worst = f"{row.worst_group.label}, {row.worst_group.group}"
    return [
        EvalResult(
            **common,
            metric_type=kind,
            metric_name=name,
            metric_value=round(float(value), 4),
            metric_config=worst if kind == "worst_group_accuracy" else None,
        )
        for kind, name, read in RESULTS
        if (value := read(row)) is not None
    ]


def _sections(report: Report, row: Row) -> list[str]:
    model, dataset = report.model, report.dataset
    rows_table = _table(
        ["row", "what was done", "accuracy", "group-balanced", "worst group", "protected-attr. acc.",
         "TPR-gap RMS"],
        [
            [
                _md(r.name),
                _md(r.description),
                _num(r.accuracy),
                _num(r.group_balanced_accuracy),
                f"{_num(r.worst_group_accuracy)} ({_md(r.worst_group.label)}, {_md(r.worst_group.group)})",
                _num(r.protected_attribute_accuracy),
                _num(r.fairness.tpr_gap.rms),
            ]
            for r in report.rows
        ],
    )
    flags = report.flags
    flag_table = (
        _table(
            ["site", "feature", "label", "who", "why", "source"],
            [[_md(f.site), _md(f.feature), _md(f.label), _md(f.who), _md(f.why), _md(f.source)] for f in flags],
        )
        if flags
        else "No features were ablated."
    )
    warnings = ["### Warnings", _bullets(report.warnings)] if report.warnings else []
    skipped = [_bullets(f"Not run: {s.title} ({s.reason})." for s in report.skipped_rows)] if report.skipped_rows else []
    return [
        "## Model Details",
        _fields(model.model_dump()),
        "## Training Details",
        "### Data",
        _fields(dataset.model_dump()),
        "### Head retraining",
        _fields(report.retrain),
        "### Sparse autoencoders",
        _fields(report.sae),
        "## Evaluation",
        f"Rows evaluated on the {_md(dataset.subsets.get('evaluate'))} subset, protected "
        f"attribute {_md(report.attribute)}; the model-index results above are those of row "
        f"{_md(row.name)}.",
        rows_table,
        *skipped,
        "### Findings",
        _bullets(report.comparison.findings),
        "## Bias, Risks, and Limitations",
        _bullets(report.limitations),
        *warnings,
        "## Model Examination",
        _md(report.flag_policy.statement),
        flag_table,
    ]


def model_card(
    report: Report, *, model_id: str | None = None, row: str | None = None, license: str | None = None
) -> str:
    """README.md content for the edited model; `row` picks the results (default: the SHIFT row)."""
    chosen = _pick_row(report, row)
    name = model_id or report.model.edited_model_id or "edited-model"
    data = ModelCardData(
        model_name=name,
        base_model=report.model.base_model,
        language="en",
        license=license,
        pipeline_tag="text-classification",
        tags=["shift", "sparse-autoencoder", "debiasing", "fairness"],
        eval_results=_eval_results(report, chosen),
    )
    intro = (
        f"# {_md(name)}\n\n{_md(report.title)}. An edited copy of {_md(report.model.base_model)}: "
        f"{len(report.flags)} sparse-autoencoder feature(s) flagged as spurious are ablated (SHIFT, "
        "Marks et al. 2024) and the classification head is retrained with the ablation in place."
    )
    content = f"---\n{data.to_yaml()}\n---\n\n{intro}\n\n" + "\n\n".join(_sections(report, chosen)) + "\n"
    return str(ModelCard(content))
