"""`render_html(report)`: one self-contained HTML page a reviewer can read without tools.

Inline CSS and SVG only (no script, external font or image). Every piece of text from the report goes
through `html.escape`: feature labels, rationales and row descriptions come from data and people.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape

from editing_service.report.budget_chart import budget_chart
from editing_service.report.chart import bar_chart
from editing_service.report.circuit_section import circuit_section
from editing_service.report.schema import BudgetCurve, Flag, Report, Row, SeedSummary, SkippedRow

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#1d1d1d;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;vertical-align:top}
th{background:#f1f1f1}td.t,th.t{text-align:left}
tr.small td{background:#fff4d6}.bad{color:#a4161a;font-weight:600}.muted{color:#666;font-size:.85em}
h2{border-bottom:2px solid #3b6ea8;padding-bottom:.15em;margin-top:1.6em}
li{margin:.2em 0}code{background:#f4f4f4;padding:0 .2em}
"""
_LEFT = ' class="t"'
HEADLINE = (
    ("n", "rows"),
    ("accuracy", "accuracy"),
    ("group_balanced_accuracy", "group-balanced"),
    ("worst_group_accuracy", "worst group"),
    ("protected_attribute_accuracy", "protected-attr. acc."),
)


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _f(value: object, digits: int = 3) -> str:
    if value is None:
        return "&mdash;"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _e(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _ci(interval: Sequence[float] | None) -> str:
    return "" if not interval else f' <span class="muted">[{interval[0]:.3f}, {interval[1]:.3f}]</span>'


def _table(
    head: Iterable[str], body: Iterable[Iterable[str]], text_columns: int = 1, classes: Sequence[str] = ()
) -> str:
    """Cells are already-escaped HTML; the first `text_columns` columns are left-aligned."""
    ths = "".join(f"<th{_LEFT if i < text_columns else ''}>{h}</th>" for i, h in enumerate(head))
    rows = []
    for r, cells in enumerate(body):
        cls = f' class="{classes[r]}"' if r < len(classes) and classes[r] else ""
        tds = "".join(f"<td{_LEFT if i < text_columns else ''}>{c}</td>" for i, c in enumerate(cells))
        rows.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _headline(rows: Sequence[Row]) -> str:
    head = [
        "row",
        *(_e(t) for _, t in HEADLINE),
        "worst cell",
        "DP diff.",
        "EO diff.",
        "EOpp diff.",
        "TPR-gap RMS",
        "4/5 rule (min ratio)",
        "leak: linear / MLP (majority)",
    ]
    body = []
    for r in rows:
        fair, leak = r.fairness, r.leakage
        cells = [f'<b>{_e(r.name)}</b> <span class="muted">({_e(r.role)})</span><br>'
                 f'<span class="muted">{_e(r.description)}</span>']
        cells += [_f(getattr(r, k)) + _ci(r.intervals.of(k)) for k, _ in HEADLINE]
        cells.append(_e(f"({r.worst_group.label}, {r.worst_group.group})"))
        cells += [
            _f(fair.demographic_parity_difference),
            _f(fair.equalized_odds_difference),
            _f(fair.equal_opportunity_difference),
        ]
        cells.append(_f(fair.tpr_gap.rms))
        four = fair.four_fifths
        cells.append(
            f'<span class="{"bad" if four.violated else ""}">'
            f"{'violated' if four.violated else 'ok'} ({_f(four.min_ratio, 2)})</span>"
        )
        cells.append(
            "&mdash;"
            if leak is None
            else f"{_f(leak.probes['linear'].accuracy)} / {_f(leak.probes['mlp'].accuracy)} "
            f"({_f(leak.majority_baseline)})"
        )
        body.append(cells)
    return _table(head, body)


def _row_detail(r: Row) -> str:
    boot = r.bootstrap
    cells = r.cells
    small = [c.count < r.min_cell_count for c in cells]
    body = [
        [_e(c.label), _e(c.group), _f(c.count), _f(c.accuracy), _ci(c.ci), _ci(c.wilson_ci)]
        for c in cells
    ]
    body += [[_e(c.label), _e(c.group), "0", "empty", "", ""] for c in r.empty_cells]
    out = [
        f"<h3>{_e(r.name)}</h3><p>{_e(r.description)}</p>",
        _table(
            [
                "class",
                _e(r.attribute),
                "count",
                "accuracy",
                _e(f"bootstrap CI ({boot.method}, {boot.n_boot} resamples)" if boot.n_boot
                   else "no bootstrap (n_boot 0)"),
                "Wilson CI",
            ],
            body,
            text_columns=2,
            classes=["small" if s else "" for s in small],
        ),
    ]
    out.append(
        _table(
            [_e(r.attribute), "count", "accuracy"],
            [[_e(g.group), _f(g.count), _f(g.accuracy)] for g in r.by_group],
        )
    )
    gap = r.fairness.tpr_gap
    out.append(
        _table(
            ["class", _e(f"TPR gap: {gap.definition}")],
            [[_e(k), _f(v)] for k, v in gap.per_class.items()],
        )
    )
    if r.warnings:
        out.append("<ul>" + "".join(f"<li>{_e(w)}</li>" for w in r.warnings) + "</ul>")
    return "".join(out)


def _mapping(data: Mapping | None) -> str:
    if not data:
        return '<p class="muted">not given</p>'
    body = [
        [_e(k), _e(v if isinstance(v, str | int | float) or v is None else json.dumps(v, default=str))]
        for k, v in data.items()
    ]
    return _table(["field", "value"], body, text_columns=2)


def _flags(flags: Sequence[Flag]) -> str:
    if not flags:
        return '<p class="muted">No features were flagged.</p>'
    return _table(
        ["site", "feature", "label", "who", "why", "source"],
        [[_e(f.site), _e(f.feature), _e(f.label), _e(f.who), _e(f.why), _e(f.source)] for f in flags],
        text_columns=6,
    )


def _skipped(skipped: Sequence[SkippedRow]) -> str:
    if not skipped:
        return ""
    return "<h3>Rows not run</h3>" + _table(
        ["row", "why not"], [[_e(s.name), _e(s.reason)] for s in skipped], text_columns=2
    )


def _budget(curve: BudgetCurve | None) -> str:
    if curve is None:
        return '<p class="muted">No budget curve was computed.</p>'
    oracle = "no oracle row, so no normalised score" if curve.oracle is None else f"oracle {curve.oracle:.3f}"
    body = [
        [_f(p.n), _f(p.accuracy), _f(p.score), _f(p.accuracy_retrained), _f(p.score_retrained)]
        for p in curve.points
    ]
    return (
        f"<p>The top N flagged features by attribution, ablated; score = (A - A<sub>base</sub>) / "
        f"(A<sub>oracle</sub> - A<sub>base</sub>) on {_e(curve.metric)} (base {curve.base:.3f}, {_e(oracle)}): "
        "1 closes the whole gap to the oracle, 0 changes nothing (SAEBench's SCR).</p>"
        + _table(["N", "accuracy (original head)", "score", "accuracy (head retrained)", "score"], body, 0)
        + budget_chart(curve)
    )


def _seeds(summary: SeedSummary | None) -> str:
    if summary is None:
        return ""
    metrics = [k for k, _ in HEADLINE if k != "n"]
    body = []
    for name, spread in summary.rows.items():
        cells = [_e(name)]
        for metric in metrics:
            s = spread.get(metric)
            cells.append("&mdash;" if s is None else f"{s.mean:.3f} <span class=\"muted\">[{s.min:.3f}, {s.max:.3f}]</span>")
        body.append(cells)
    return (
        f"<h2>Over {len(summary.seeds)} seeds</h2><p>SAE training and everything after it repeated with seeds "
        f"{_e(', '.join(map(str, summary.seeds)))}: mean [min, max].</p>"
        + _table(["row", *(_e(t) for k, t in HEADLINE if k != "n")], body)
    )


def _list(items: Iterable[object]) -> str:
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def render_html(report: Report) -> str:
    """The report as one HTML page (a string)."""
    rows = report.rows
    policy = report.flag_policy
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{_e(report.title)}</title>',
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_e(report.title)}</h1>",
        f'<p class="muted">Created {_e(report.created_at)}; protected attribute '
        f"<code>{_e(report.attribute)}</code>; classes {_e(', '.join(report.label_names))}; dataset "
        f"{_e(report.dataset.name)}; report schema version {report.schema_version}.</p>",
        "<h2>Findings</h2>",
        _list(report.comparison.findings),
        "<h2>Rows</h2>",
        _headline(rows),
        _skipped(report.skipped_rows),
        '<p class="muted">Group-balanced: mean accuracy over (class, group) cells; worst group: the lowest cell; '
        "protected-attribute accuracy: how often the prediction is the class the stereotype gives the row's "
        "group (0.5 on a balanced set: no group signal). Gaps: fairlearn, "
        f"{_e(rows[0].fairness.aggregation)}. Bracketed: bootstrap intervals.</p>",
        bar_chart(rows),
        _seeds(report.seeds),
        "<h2>Budget curve</h2>",
        _budget(report.budget_curve),
        "<h2>Flags</h2>",
        f"<p>{_e(policy.statement)}</p>",
        _flags(report.flags),
        circuit_section(report.flagged_circuit),
        "<h2>Cells per row</h2>",
        *(_row_detail(r) for r in rows),
        "<h2>Provenance</h2>",
        "<h3>Dataset</h3>",
        _mapping(report.dataset.model_dump()),
        "<h3>Model</h3>",
        _mapping(report.model.model_dump()),
        "<h3>SAEs</h3>",
        _mapping(report.sae),
        "<h3>Head retraining</h3>",
        _mapping(report.retrain),
        "<h2>Limitations</h2>",
        _list(report.limitations),
        "<h2>Warnings</h2>",
        _list(report.warnings) if report.warnings else "<p>None.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)
