"""Dataset specs (pydantic, read from YAML) and loading their subsets through the `datasets` library.

A spec (`datasets_spec/*.yaml`) names the data source, the text and label columns, the class names,
the protected attributes and their stereotypes, the splits, the named subsets and the role of each
(train, validate, evaluate, oracle). `load_subset` / `load_role` return a `TextSplit`.
"""

from editing_service.data.load import (
    TextSplit,
    clear_cache,
    load_role,
    load_subset,
    stereotype_labels,
)
from editing_service.data.shipped import SHIPPED_SPECS_DIR, list_shipped_specs, load_spec
from editing_service.data.sources import DiskSource, FileSource, HubSource
from editing_service.data.spec import (
    ROLES,
    Cell,
    DatasetSpec,
    ProtectedAttribute,
    Role,
    Subset,
)
from editing_service.data.splits import ColumnSplits, RatioSplits, SourceSplits

__all__ = [
    "ROLES",
    "SHIPPED_SPECS_DIR",
    "Cell",
    "ColumnSplits",
    "DatasetSpec",
    "DiskSource",
    "FileSource",
    "HubSource",
    "ProtectedAttribute",
    "RatioSplits",
    "Role",
    "SourceSplits",
    "Subset",
    "TextSplit",
    "clear_cache",
    "list_shipped_specs",
    "load_role",
    "load_spec",
    "load_subset",
    "stereotype_labels",
]
