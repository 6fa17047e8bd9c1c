"""Reports: metrics, rows of the comparison table, report.json / html, model card.

`evaluate_row` scores one model on the evaluation split, `build_report` puts rows, provenance and flags
together into a typed `Report` (schema.py: what report.json holds), `render_html` and `model_card`
present the result. `sae_quality` (the SAE quality report) is
imported from its own module, since it needs the model and SAE packages.
"""

from editing_service.report.build import build_report
from editing_service.report.compare import compare_rows
from editing_service.report.html import render_html
from editing_service.report.leakage import ProbeSettings, leakage_probes
from editing_service.report.metrics import group_accuracy
from editing_service.report.model_card import model_card
from editing_service.report.rows import evaluate_row
from editing_service.report.schema import SCHEMA_VERSION, Report, Row, SkippedRow

__all__ = [
    "SCHEMA_VERSION",
    "ProbeSettings",
    "Report",
    "Row",
    "SkippedRow",
    "build_report",
    "compare_rows",
    "evaluate_row",
    "group_accuracy",
    "leakage_probes",
    "model_card",
    "render_html",
]
