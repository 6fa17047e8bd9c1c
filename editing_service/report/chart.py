"""An inline SVG bar chart of the report's rows: group-balanced, worst-group and protected-attribute accuracy.

Plain SVG with no script, font or image, so the HTML page stays self-contained. Bars carry a <title>
tooltip with the value and interval; a dashed line marks 0.5, where protected-attribute accuracy on a
balanced set means the predictions carry no group signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from editing_service.report.schema import Row

SERIES = (
    ("group_balanced_accuracy", "group-balanced accuracy", "#3b6ea8"),
    ("worst_group_accuracy", "worst-group accuracy", "#c8553d"),
    ("protected_attribute_accuracy", "protected-attribute accuracy", "#7a7a7a"),
)
BAR, GAP, LEFT, TOP, HEIGHT, BOTTOM = 18, 26, 44, 34, 220, 62
LEGEND_STEP = 190  # horizontal room per legend entry
LEGEND_WIDTH = LEFT + LEGEND_STEP * len(SERIES) + 10  # the chart is never narrower than its legend


def _y(value: float) -> float:
    return TOP + HEIGHT * (1.0 - max(0.0, min(1.0, value)))


def _bar(x: float, row: Row, key: str, label: str, colour: str) -> str:
    value = row.metric(key)
    if value is None:
        return f'<text x="{x + BAR / 2:.1f}" y="{TOP + HEIGHT - 4}" font-size="9" text-anchor="middle">n/a</text>'
    interval = row.intervals.of(key)
    tip = f"{row.name}: {label} {value:.3f}" + (
        f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
    )
    parts = [
        f'<rect x="{x:.1f}" y="{_y(value):.1f}" width="{BAR}" height="{TOP + HEIGHT - _y(value):.1f}" '
        f'fill="{colour}"><title>{escape(tip)}</title></rect>'
    ]
    if interval:
        cx = x + BAR / 2
        parts.append(
            f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{_y(interval[0]):.1f}" y2="{_y(interval[1]):.1f}" '
            'stroke="#222" stroke-width="1.2"/>'
        )
    parts.append(
        f'<text x="{x + BAR / 2:.1f}" y="{_y(value) - 3:.1f}" font-size="8" '
        f'text-anchor="middle">{value:.2f}</text>'
    )
    return "".join(parts)


def bar_chart(rows: Sequence[Row]) -> str:
    """One <svg> element: three bars per row, 0 to 1, with bootstrap intervals where present."""
    group = len(SERIES) * BAR + GAP
    width = max(LEFT + group * len(rows) + 10, LEGEND_WIDTH)
    height = TOP + HEIGHT + BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="accuracy by row" '
        'font-family="sans-serif">'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick)
        dash = ' stroke-dasharray="4 3"' if tick == 0.5 else ""
        colour = "#444" if tick == 0.5 else "#ddd"
        out.append(
            f'<line x1="{LEFT}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}"{dash}/>'
            f'<text x="{LEFT - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{tick:.2f}</text>'
        )
    for i, (_, label, colour) in enumerate(SERIES):
        x = LEFT + i * LEGEND_STEP
        out.append(
            f'<rect x="{x}" y="8" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="17" font-size="11">{escape(label)}</text>'
        )
    for i, row in enumerate(rows):
        x0 = LEFT + GAP / 2 + i * group
        out += [_bar(x0 + j * BAR, row, key, label, colour) for j, (key, label, colour) in enumerate(SERIES)]
        cx = x0 + len(SERIES) * BAR / 2
        y = TOP + HEIGHT + 14 + (i % 2) * 12  # alternate lines so long names do not collide
        out.append(
            f'<text x="{cx:.1f}" y="{y}" font-size="10" text-anchor="middle">'
            f"{escape(row.name)}</text>"
        )
    notes = (
        "dashed line at 0.5: protected-attribute accuracy with no group signal (balanced set)",
        "whiskers: bootstrap intervals",
    )
    for j, note in enumerate(notes):
        out.append(f'<text x="{LEFT}" y="{height - 20 + 12 * j}" font-size="10">{escape(note)}</text>')
    out.append("</svg>")
    return "".join(out)
