"""Server paths at the edge: the one root check for every path a request names, and how paths are shown.

A request may name server paths in two places only: a model folder (under the model roots) and the
data of an inline dataset spec (under the data roots or the uploads folder). Both go through
`confine`. Everything else a request names is not a path: shipped spec and lexicon names, or content
sent in the request (an inline spec, an uploaded file, a list of lexicon words).

Relative paths are read against the service home, and paths are shown relative to it (see
editing_service/shown_paths.py), so no answer exposes where the service lives on its machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from editing_service.config import ServiceConfig
from editing_service.shown_paths import shown

PathKind = Literal["model", "data"]
WHAT = {"model": "Model folder", "data": "Data file"}
OUTSIDE_ROOTS = "{what} {path} is outside the allowed roots: {roots}."
NOT_FOUND = "{what} {path} does not exist."


def roots_for(config: ServiceConfig, kind: PathKind) -> list[Path]:
    """The folders a path of this kind must lie under."""
    return list(config.model_roots) if kind == "model" else [*config.data_roots, config.uploads]


def confine(path: str | Path, config: ServiceConfig, kind: PathKind, *, must_exist: bool = True) -> Path:
    """`path` (relative: to the service home) resolved with symlinks followed, refused (PermissionError)
    unless it lies under one of the roots of its kind. The refusal is the same whether or not the path
    exists, so it tells nothing about files outside the roots."""
    what = WHAT[kind]
    roots = roots_for(config, kind)
    given = Path(path).expanduser()
    resolved = (given if given.is_absolute() else config.home / given).resolve()
    if not any(resolved == root or root in resolved.parents for root in roots):
        listed = ", ".join(shown(r, config.home) for r in roots)
        raise PermissionError(OUTSIDE_ROOTS.format(what=what, path=path, roots=listed))
    if must_exist and not resolved.exists():
        raise FileNotFoundError(NOT_FOUND.format(what=what, path=shown(resolved, config.home)))
    return resolved

