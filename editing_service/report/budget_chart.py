"""An inline SVG line chart of the budget curve: normalised score against the number of ablated features.

Same approach as `chart.py` (plain SVG, no script or font): one line for the original head, one for the
retrained head; x is the number of flagged features ablated (log-spaced points placed evenly), y the
SCR score, with dashed lines at 0 (no change) and 1 (the oracle). Scores outside [-0.5, 1.5] are drawn
at the edge and their value printed.
"""

from __future__ import annotations

from html import escape

from editing_service.report.schema import BudgetCurve

SERIES = (("score", "original head", "#c8553d"), ("score_retrained", "head retrained", "#3b6ea8"))
LEFT, TOP, WIDTH, HEIGHT, BOTTOM = 48, 30, 460, 200, 48
LOW, HIGH = -0.5, 1.5


def _y(value: float) -> float:
    return TOP + HEIGHT * (HIGH - max(LOW, min(HIGH, value))) / (HIGH - LOW)


def budget_chart(curve: BudgetCurve) -> str:
    """One <svg> element (empty string when no point has a score)."""
    points = curve.points
    if not points or all(p.score is None and p.score_retrained is None for p in points):
        return ""
    step = WIDTH / max(len(points) - 1, 1)
    xs = [LEFT + i * step for i in range(len(points))]
    width, height = LEFT + WIDTH + 20, TOP + HEIGHT + BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="budget curve" font-family="sans-serif">'
    ]
    for tick in (-0.5, 0.0, 0.5, 1.0, 1.5):
        y = _y(tick)
        dash = ' stroke-dasharray="4 3"' if tick in (0.0, 1.0) else ""
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + WIDTH}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#444" if dash else "#ddd"}"{dash}/>'
            f'<text x="{LEFT - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{tick:.1f}</text>'
        )
    for x, point in zip(xs, points, strict=True):
        out.append(f'<text x="{x:.1f}" y="{TOP + HEIGHT + 16}" font-size="10" text-anchor="middle">'
                   f"{point.n}</text>")
    out.append(f'<text x="{LEFT + WIDTH / 2}" y="{TOP + HEIGHT + 34}" font-size="11" text-anchor="middle">'
               "flagged features ablated (top N by attribution)</text>")
    for i, (key, label, colour) in enumerate(SERIES):
        out.append(f'<rect x="{LEFT + i * 160}" y="8" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{LEFT + i * 160 + 14}" y="17" font-size="11">{escape(label)}</text>')
        known = [(x, getattr(p, key)) for x, p in zip(xs, points, strict=True) if getattr(p, key) is not None]
        if len(known) > 1:
            path = " ".join(f"{x:.1f},{_y(v):.1f}" for x, v in known)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, v in known:
            out.append(f'<circle cx="{x:.1f}" cy="{_y(v):.1f}" r="3" fill="{colour}">'
                       f"<title>{escape(label)}: {v:.3f}</title></circle>")
    out.append("</svg>")
    return "".join(out)
