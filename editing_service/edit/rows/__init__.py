"""The report's rows as a registry: one file per row, each registering one `ReportRow` (see base.py).

Importing this package registers the shipped rows; a plug-in registers its own with `register`.
"""

from editing_service.edit.rows import (  # noqa: F401  (each module registers its row)
    leace,
    neuron_ablation,
    oracle,
    original,
    random_ablation,
    shift,
    shift_embedding,
    shift_retrained,
    token_deletion,
)
from editing_service.edit.rows.base import (
    ReportRow,
    RowOutput,
    RowSkipped,
    check_row_names,
    default_row_names,
    optional_row_names,
    register,
    registered_rows,
    rows_to_run,
    sites_needed,
    unregister,
)
from editing_service.edit.rows.context import RowContext

__all__ = ["ReportRow", "RowContext", "RowOutput", "RowSkipped", "check_row_names", "default_row_names",
           "optional_row_names", "register", "registered_rows", "rows_to_run", "sites_needed", "unregister"]
