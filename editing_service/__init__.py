"""editing_service: find, flag and remove spurious features in text classifiers (SHIFT)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_model"]


def __getattr__(name: str) -> Any:
    # `load_model` is imported lazily so that `import editing_service` stays light.
    if name == "load_model":
        from editing_service.edit.io import load_model

        return load_model
    raise AttributeError(f"module 'editing_service' has no attribute {name!r}")
