"""Saving and loading classifiers, original or edited, as folders (a `save_pretrained`-style layout).

    config.json          format, kind, classes, probe layer, max length, weights' dtype, the base model reference
                         (path, name, weights sha256, embedded default or copied), the edits, provenance
    head.safetensors     weight [C, d], bias [C] (no bias for heads without one: decoder classifiers')
    edits.safetensors    per edit i, its tensors: edit{i}.W_enc [d_in, n], .b_enc, .threshold, .W_dec [n, d_in],
                         .b_dec, .mean (a feature ablation); edit{i}.proj_left, .proj_right, .bias (a LEACE
                         eraser). The config's edits list them in the order they run at their site.
    base_model/          a copy of the base model folder (only with copy_base=True)

`load_model(path)` returns a `TextClassifier` with `.classes`, `.predict(texts)` and
`.predict_proba(texts)`; the base model's weights hash is checked so a changed base is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from editing_service.edit.ablation import FeatureAblation
from editing_service.edit.erasure import ConceptErasure
from editing_service.model.classifier import TextClassifier
from editing_service.model.dtype import dtype_name
from editing_service.model.load import embedded_default_path, load_classifier, weights_sha256
from editing_service.model.placement import DeviceMap

FORMAT = "editing-service/classifier"
FORMAT_VERSION = 1

NOT_A_MODEL = "{path} is not a saved classifier (no config.json with format {format!r})."
UNFITTED = "Cannot save a classifier whose head is not fitted."
BASE_CHANGED = (
    "The base model at {path} has changed since this classifier was saved: its weights sha256 is "
    "{found}, the saved classifier expects {expected}."
)
BASE_MISSING = "The base model of this classifier is missing: {path} does not exist."
_BASE_FILES = ("*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*")
# The interventions a saved classifier may hold, by the type name its config records (no "type": an ablation).
INTERVENTION_TYPES: dict[str, type[FeatureAblation] | type[ConceptErasure]] = {
    "feature_ablation": FeatureAblation,
    "concept_erasure": ConceptErasure,
}
_TYPE_NAMES = {cls: name for name, cls in INTERVENTION_TYPES.items()}
UNKNOWN_INTERVENTION = "Saved edit {key} has unknown type {type!r}; known types: {known}."


def _copy_base(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for pattern in _BASE_FILES:
        for file in source.glob(pattern):
            if file.is_file():
                shutil.copy2(file, target / file.name)


def save_model(
    classifier: TextClassifier, path: str | Path, *, copy_base: bool = False,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write `classifier` (its head and interventions) to the folder `path`; returns the folder."""
    head = classifier.head
    if head is None:
        raise ValueError(UNFITTED)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    source = classifier.source
    copied = copy_base and not source.embedded_default
    if copied:
        _copy_base(Path(source.path), folder / "base_model")
    save_file({name: tensor.detach().cpu().contiguous() for name, tensor in head.state_dict().items()},
              folder / "head.safetensors")
    edits, tensors = [], {}
    for i, edit in enumerate(classifier.interventions):
        if type(edit) not in _TYPE_NAMES:
            raise TypeError(f"Cannot save an intervention of type {type(edit).__name__}.")
        edits.append({"key": f"edit{i}", "type": _TYPE_NAMES[type(edit)], "site": edit.site.name,
                      **edit.saved_config()})
        for name, tensor in edit.saved_tensors().items():
            tensors[f"edit{i}.{name}"] = tensor.detach().cpu().contiguous()
    if tensors:
        save_file(tensors, folder / "edits.safetensors")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": classifier.kind,
        "classes": classifier.classes,
        "probe_layer": classifier.probe_layer,
        "max_length": classifier.max_length,
        "dtype": dtype_name(classifier.dtype),
        "base_model": {
            "path": "base_model" if copied else source.path,
            "name_or_path": source.name_or_path,
            "weights_sha256": source.weights_sha256,
            "embedded_default": source.embedded_default,
            "copied": copied,
        },
        "edits": edits,
        "provenance": provenance or {},
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def read_model_config(path: str | Path) -> dict[str, Any]:
    """The config.json of a saved classifier (refusing other folders with a clear message)."""
    file = Path(path) / "config.json"
    config = json.loads(file.read_text()) if file.is_file() else {}
    if config.get("format") != FORMAT:
        raise ValueError(NOT_A_MODEL.format(path=path, format=FORMAT))
    return config


def _base_folder(folder: Path, base: dict[str, Any]) -> Path:
    if base["embedded_default"]:
        return embedded_default_path()
    location = folder / base["path"] if base["copied"] else Path(base["path"])
    if not location.is_dir():
        raise FileNotFoundError(BASE_MISSING.format(path=location))
    return location


def load_model(path: str | Path, *, device: str | torch.device = "cpu",
               device_map: DeviceMap | None = None) -> TextClassifier:
    """Load a classifier saved with `save_model`, with its head and edits, on `device` (its base model's weights
    beyond `device_map`'s budget offloaded to CPU memory and disk)."""
    folder = Path(path)
    config = read_model_config(folder)
    base = config["base_model"]
    location = _base_folder(folder, base)
    found = weights_sha256(location)
    if found != base["weights_sha256"]:
        raise ValueError(BASE_CHANGED.format(path=location, found=found, expected=base["weights_sha256"]))
    classifier = load_classifier(
        None if base["embedded_default"] else location, classes=config["classes"],
        probe_layer=config["probe_layer"] if config["probe_layer"] is not None else -1,
        max_length=config["max_length"], device=device, dtype=config.get("dtype", "float32"),
        device_map=device_map,
    )
    head_tensors = load_file(folder / "head.safetensors")
    weight = head_tensors["weight"]
    head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in head_tensors, dtype=weight.dtype)
    head.load_state_dict(head_tensors)
    classifier.set_head(head)
    if config["edits"]:
        tensors = load_file(folder / "edits.safetensors")
        sites = {s.name: s for s in classifier.resolve_sites([e["site"] for e in config["edits"]])}
        edits = []
        for entry in config["edits"]:
            kind = entry.get("type", "feature_ablation")
            if kind not in INTERVENTION_TYPES:
                raise ValueError(UNKNOWN_INTERVENTION.format(key=entry["key"], type=kind,
                                                             known=sorted(INTERVENTION_TYPES)))
            cls = INTERVENTION_TYPES[kind]
            names = cls.TENSORS + getattr(cls, "GATE_TENSORS", ())
            buffers = {name: tensors[f"{entry['key']}.{name}"] for name in names
                       if f"{entry['key']}.{name}" in tensors}
            edits.append(cls.from_saved(sites[entry["site"]], buffers, entry))
        classifier.set_interventions(edits)
    return classifier if classifier.offloaded_to is not None else classifier.to(device)
