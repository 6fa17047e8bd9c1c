"""Save and load SAEs in the SAELens on-disk layout: a folder with `cfg.json` + `sae_weights.safetensors`.

We write what SAELens >= 6 writes (so SAELens can read our folders) and read both our folders and pretrained
SAELens ones, including pre-6.0 configs. Conversions that change nothing numerically are folded into the
weights on load: `apply_b_dec_to_input=False`, `rescale_acts_by_decoder_norm=True` (topk) and a fine-tuning
scaling factor. Run-time activation normalisation is refused: our SAEs take raw activations.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from editing_service.sae.base import SAE
from editing_service.sae.config import RESERVED_METADATA_KEYS, SAEConfig, normalize_dtype_name
from editing_service.sae.registry import get_sae_class

logger = logging.getLogger(__name__)

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
# The SAELens on-disk format version we write (the layout introduced in SAELens 6.0); SAELens reads configs
# without a version >= 6 as pre-6.0 ones.
SAELENS_FORMAT_VERSION = "6.0.0"
_TO_SAELENS_ARCH = {"relu": "standard"}
_FROM_SAELENS_ARCH = {"standard": "relu"}
# Older SAELens configs keep these at the top level; we move them into our config or its metadata.
_LEGACY_RENAMES = {"hook_point": "hook_name", "hook_point_head_index": "hook_head_index"}
_SAELENS_ONLY_FIELDS = {
    "apply_b_dec_to_input",
    "normalize_activations",
    "reshape_activations",
    "rescale_acts_by_decoder_norm",
    "finetuning_scaling_factor",
    "activation_fn",
    "activation_fn_str",
    "activation_fn_kwargs",
    "architecture",
    "d_in",
    "d_sae",
    "dtype",
    "device",
    "k",
    "l1_coefficient",
    "l0_coefficient",
    "jumprelu_bandwidth",
    "metadata",
    "hook_name",
    "model_name",
    "sae_lens_version",
    "sae_lens_training_version",
}

ERR_NORMALIZE = (
    "normalize_activations={value!r} is not supported: this service folds activation normalisation into the "
    "weights, so the SAE must take raw activations. Fold it first (SAELens: "
    "sae.fold_activation_norm_scaling_factor(scale); sae.save_model(path)) and load that folder."
)
ERR_RESHAPE = (
    "reshape_activations={value!r} is not supported; only 'none' (SAEs on flat [..., d_in] activations)"
)
ERR_MISSING = "{path}: missing tensor(s) {keys} in {file}"
ERR_SHAPE = "{path}: tensor {key} has shape {shape}, expected {expected}"


def sae_to_cfg_dict(sae: SAE) -> dict[str, Any]:
    """The cfg.json content of `sae`: SAELens >= 6 fields plus ours (SAELens ignores the extra ones)."""
    cfg = sae.cfg
    metadata = {
        **cfg.metadata,
        "hook_name": cfg.hook_name,
        "model_name": cfg.model_name,
        "sae_lens_version": SAELENS_FORMAT_VERSION,
        "sae_lens_training_version": None,
    }
    out: dict[str, Any] = {
        "architecture": _TO_SAELENS_ARCH.get(cfg.architecture, cfg.architecture),
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": cfg.dtype,
        "device": cfg.device,
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": metadata,
        "k": cfg.k,
        "l1_coefficient": cfg.l1_coefficient,
        "l0_coefficient": cfg.l0_coefficient,
        "jumprelu_bandwidth": cfg.jumprelu_bandwidth,
    }
    if cfg.architecture == "topk":
        out["rescale_acts_by_decoder_norm"] = False
    return out


def save_sae(sae: SAE, path: str | Path) -> Path:
    """Write `sae` in its inference form (`SAE.inference_form`: a BatchTopK SAE is saved as the JumpReLU SAE it
    serves, as SAELens does) to the folder `path` (created if needed) and return the folder."""
    sae = sae.inference_form()
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: p.detach().contiguous().cpu() for name, p in sae.named_parameters()}
    save_file(tensors, str(folder / WEIGHTS_FILENAME))
    text = json.dumps(sae_to_cfg_dict(sae), indent=2)
    (folder / CFG_FILENAME).write_text(text + "\n")
    logger.info("saved %s SAE (%d x %d) to %s", sae.cfg.architecture, sae.d_in, sae.d_sae, folder)
    return folder


def sae_digest(path: str | Path) -> str:
    """The SHA-256 of what an SAE folder computes: its weights file and its config without the device and
    the training metadata. Two folders with one digest encode every input into the same features."""
    folder = Path(path)
    cfg = json.loads((folder / CFG_FILENAME).read_text())
    digest = hashlib.sha256(json.dumps({k: v for k, v in cfg.items() if k not in ("device", "metadata")},
                                       sort_keys=True).encode())
    with (folder / WEIGHTS_FILENAME).open("rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _architecture(raw: dict[str, Any]) -> str:
    arch = raw.get("architecture")
    fn = raw.get("activation_fn", raw.get("activation_fn_str"))
    if arch is None:  # pre-6.0: a ReLU SAE unless the activation function says topk
        arch = "topk" if fn == "topk" else "standard"
    arch = _FROM_SAELENS_ARCH.get(arch, arch)
    get_sae_class(arch)  # ValueError naming the known architectures
    return arch


def cfg_from_dict(raw: dict[str, Any]) -> tuple[SAEConfig, dict[str, Any]]:
    """Our SAEConfig from a cfg.json dict (ours, SAELens >= 6 or older), and the load-time flags.

    The flags are `apply_b_dec_to_input` and `rescale_acts_by_decoder_norm`, which `load_sae` folds away.
    """
    raw = {_LEGACY_RENAMES.get(key, key): value for key, value in raw.items()}
    missing = [key for key in ("d_in", "d_sae") if key not in raw]
    if missing:
        raise ValueError(f"{CFG_FILENAME} lacks the required field(s) {missing}")
    arch = _architecture(raw)
    norm = raw.get("normalize_activations", "none")
    norm = {None: "none", False: "none", True: "expected_average_only_in"}.get(norm, norm)
    if norm != "none":
        raise ValueError(ERR_NORMALIZE.format(value=norm))
    reshape = raw.get("reshape_activations", "none")
    if reshape != "none":
        raise ValueError(ERR_RESHAPE.format(value=reshape))
    meta_in = dict(raw.get("metadata") or {})
    metadata: dict[str, Any] = {}
    if "metadata" not in raw:  # pre-6.0 configs keep run metadata (context_size, prepend_bos, ...) at the top
        metadata = {k: v for k, v in raw.items() if k not in _SAELENS_ONLY_FIELDS}
    metadata.update({k: v for k, v in meta_in.items() if k not in RESERVED_METADATA_KEYS})
    k = raw.get("k")
    if arch == "topk" and k is None:
        k = (raw.get("activation_fn_kwargs") or {}).get("k")
    values: dict[str, Any] = {
        "architecture": arch,
        "d_in": int(raw["d_in"]),
        "d_sae": int(raw["d_sae"]),
        "k": int(k) if arch == "topk" and k is not None else None,
        "dtype": normalize_dtype_name(raw.get("dtype", "float32")),
        "device": str(raw.get("device", "cpu")),
        "hook_name": meta_in.get("hook_name", raw.get("hook_name")),
        "model_name": meta_in.get("model_name", raw.get("model_name")),
        "metadata": metadata,
    }
    for name in ("l1_coefficient", "l0_coefficient", "jumprelu_bandwidth"):
        if raw.get(name) is not None:
            values[name] = float(raw[name])
    flags = {
        "apply_b_dec_to_input": bool(raw.get("apply_b_dec_to_input", True)),
        "rescale_acts_by_decoder_norm": arch == "topk"
        and bool(raw.get("rescale_acts_by_decoder_norm", False)),
    }
    return SAEConfig(**values), flags


def _resolve_device(device: str | None, cfg_device: str) -> str:
    if device is not None:
        return str(device)
    if cfg_device.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("cfg.json asks for device %r but CUDA is unavailable; loading on cpu", cfg_device)
        return "cpu"
    return cfg_device


def load_sae(path: str | Path, *, device: str | torch.device | None = None, dtype: str | None = None) -> SAE:
    """Load an SAE folder written by `save_sae` or by SAELens (>= 6 or older layouts).

    `device` / `dtype` override the config's; the returned SAE always takes raw activations with
    apply_b_dec_to_input semantics.
    """
    folder = Path(path)
    raw = json.loads((folder / CFG_FILENAME).read_text())
    cfg, flags = cfg_from_dict(raw)
    cfg.device = _resolve_device(None if device is None else str(device), cfg.device)
    if dtype is not None:
        cfg.dtype = normalize_dtype_name(dtype)
    tensors = load_file(str(folder / WEIGHTS_FILENAME))
    sae = get_sae_class(cfg.architecture)(cfg)
    _load_tensors(sae, tensors, folder, flags)
    return sae


@torch.no_grad()
def _load_tensors(sae: SAE, tensors: dict[str, torch.Tensor], folder: Path, flags: dict[str, Any]) -> None:
    if "log_threshold" in tensors and "threshold" not in tensors:
        tensors["threshold"] = tensors.pop("log_threshold").exp()
    params = dict(sae.named_parameters())
    missing = sorted(set(params) - set(tensors))
    if missing:
        raise ValueError(ERR_MISSING.format(path=folder, keys=missing, file=WEIGHTS_FILENAME))
    for name, param in params.items():
        tensor = tensors[name]
        if tuple(tensor.shape) != tuple(param.shape):
            raise ValueError(
                ERR_SHAPE.format(
                    path=folder, key=name, shape=tuple(tensor.shape), expected=tuple(param.shape)
                )
            )
        param.copy_(tensor.to(param.dtype))
    scaling = tensors.get("scaling_factor", tensors.get("finetuning_scaling_factor"))
    if scaling is not None and not torch.all(scaling == 1):
        sae.W_dec.mul_(scaling.to(sae.dtype).to(sae.device)[:, None])  # decode((f * s)) == decode'(f)
        logger.info("folded a fine-tuning scaling factor into W_dec (%s)", folder)
    if not flags["apply_b_dec_to_input"]:
        sae.b_enc.add_(sae.b_dec @ sae.W_enc)  # x @ W + b == (x - b_dec) @ W + (b + b_dec @ W)
        logger.info("folded apply_b_dec_to_input=False into b_enc (%s)", folder)
    if flags["rescale_acts_by_decoder_norm"]:
        sae.fold_decoder_norm_()  # the SAE used z * ||W_dec[i]|| and f / ||W_dec[i]||
        logger.info("folded rescale_acts_by_decoder_norm into the weights (%s)", folder)
