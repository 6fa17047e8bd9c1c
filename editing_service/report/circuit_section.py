"""The report's section on the flagged features as part of the circuit: how much of the behaviour they
carry (faithfulness, completeness) and the drawing of their paths to the decision (inline SVG)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape


def _pct(value: object) -> str:
    return "undefined" if value is None else f"{float(value):.1%}"


def circuit_section(data: Mapping | None) -> str:
    """HTML for report["flagged_circuit"] (empty when the run has no circuit graph)."""
    if not data:
        return ""
    numbers = data["set"]
    parts = [
        "<h2>Flagged features in the circuit</h2>",
        f"<p>{escape(numbers['statement'])}</p>",
        f'<p class="muted">Completeness {_pct(numbers["completeness"])}: the share of the behaviour '
        "(F(model) - F(every node ablated)) left when only the flagged features are ablated; faithfulness "
        f"{_pct(numbers['faithfulness'])}: the share the flagged features carry alone. Measured on the original "
        "classifier, training examples, ablated nodes set to their training means (circuit.json settings).</p>",
    ]
    if data.get("svg"):
        parts.append(f'<div class="circuit">{data["svg"]}</div>')
        parts.append(f'<p class="muted">{int(data["n_nodes"])} nodes and {int(data["n_edges"])} edges: each flagged '
                     "feature's strongest edges followed to the decision; edge width by |weight|, blue edges support "
                     "the decision, red oppose it; error nodes are boxes.</p>")
    else:
        parts.append('<p class="muted">No drawing: Graphviz is not installed.</p>')
    return "\n".join(parts)
