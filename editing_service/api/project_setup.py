"""Checking what a new project names (model, dataset, settings) before anything is stored.

A project is only created when its model folder lies under an allowed root and holds safetensors
weights, its dataset spec is valid and every role loads, and its settings are valid run settings
naming no server path (a lexicon is a shipped name or a list of words); otherwise the caller gets the
problem in one sentence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from editing_service.api.paths import confine
from editing_service.config import ServiceConfig
from editing_service.data import DatasetSpec, load_role, load_spec
from editing_service.data.shipped import list_shipped_specs
from editing_service.data.spec import format_validation_error
from editing_service.features import shipped_lexicons
from editing_service.settings import RunSettings

NO_SAFETENSORS = "Model folder {path} has no *.safetensors weights; only safetensors are loaded."
NO_CONFIG = "Model folder {path} has no config.json."
BAD_CONFIG = "Model folder {path} has a config.json that is not a JSON object: {problem}"
REMOTE_CODE = "Model folder {path} needs custom code (auto_map in config.json); trust_remote_code is never used."
UNKNOWN_SHIPPED = "No shipped dataset spec is called {name!r}; the shipped specs are: {available}."
BAD_SETTINGS = "settings are invalid: {problem}"
RESERVED_SETTINGS = "settings must not set {keys}: the project's model and dataset give them."
LEXICON_NOT_SHIPPED = (
    "settings.suggestions.lexicon {name!r} is not a shipped lexicon ({shipped}); over the API a lexicon is a "
    "shipped name or a list of words given in the request, never a file on the server."
)
BAD_SOURCE = "dataset.inline.source must be a mapping whose path (if any) is a string."
INVALID_INLINE = "The inline dataset spec is invalid:\n{problems}"


def check_model(ref: str | None, config: ServiceConfig) -> str | None:
    """The resolved model folder (None: the embedded default), refused unless safe to load."""
    if ref is None or ref in ("", "default"):
        return None
    folder = confine(ref, config, "model")
    if not (folder / "config.json").is_file():
        raise ValueError(NO_CONFIG.format(path=ref))
    if not any(folder.glob("*.safetensors")):
        raise ValueError(NO_SAFETENSORS.format(path=ref))
    try:
        model_config = json.loads((folder / "config.json").read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(BAD_CONFIG.format(path=ref, problem=err)) from err
    if not isinstance(model_config, dict):
        raise ValueError(BAD_CONFIG.format(path=ref, problem=f"it is a {type(model_config).__name__}"))
    if "auto_map" in model_config:
        raise ValueError(REMOTE_CODE.format(path=ref))
    return str(folder)


def merge_settings(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` merged in, section by section (nested dicts merge, other values replace)."""
    merged = dict(base)
    for key, value in overrides.items():
        both_dicts = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merge_settings(merged[key], value) if both_dicts else value
    return merged


def check_settings(overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides, validated as run settings (spec and model path come from the project)."""
    reserved = [k for k in ("spec",) if k in overrides] + (
        ["model.path"] if "path" in (overrides.get("model") or {}) else []
    )
    if reserved:
        raise ValueError(RESERVED_SETTINGS.format(keys=", ".join(reserved)))
    try:
        settings = RunSettings.model_validate({**overrides, "spec": "placeholder"})
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ValueError(BAD_SETTINGS.format(problem=problems)) from err
    lexicon = settings.suggestions.lexicon
    if isinstance(lexicon, str) and lexicon not in shipped_lexicons():
        raise ValueError(LEXICON_NOT_SHIPPED.format(name=lexicon, shipped=", ".join(shipped_lexicons())))
    return overrides


def _check_loads(spec: DatasetSpec) -> None:
    for role in spec.roles:
        load_role(spec, role)


def shipped_spec(name: str) -> str:
    """A shipped spec's name, after checking that it exists and loads."""
    if name not in list_shipped_specs():
        raise ValueError(UNKNOWN_SHIPPED.format(name=name, available=", ".join(list_shipped_specs())))
    _check_loads(load_spec(name))
    return name


def inline_spec(document: dict[str, Any], *, folder: Path, config: ServiceConfig,
                data_file: Path | None = None) -> str:
    """Write an inline spec to `folder`/spec.yaml and return its path.

    With `data_file` (an upload), the spec's file source points at it; otherwise a file source must lie
    under one of the data roots. Hub and saved-dataset sources are checked the same way as files.
    """
    document = dict(document)
    source = document.get("source") or {}
    if not isinstance(source, dict) or not isinstance(source.get("path", ""), str):
        raise ValueError(BAD_SOURCE)
    source = dict(source)
    if data_file is not None:
        source["path"] = str(data_file)
        source.setdefault("kind", "file")
    elif "path" in source:
        source["path"] = str(confine(source["path"], config, "data"))
    document["source"] = source
    try:
        spec = DatasetSpec.from_dict(document)
    except ValidationError as err:
        raise ValueError(INVALID_INLINE.format(problems=format_validation_error(err))) from err
    _check_loads(spec)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(spec.to_yaml())
    return str(path)
