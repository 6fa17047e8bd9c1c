"""The dtype a classifier's weights are loaded in: `auto` is the checkpoint's on a GPU, float32 on the CPU.

Whatever the model's dtype, every hooked site is read and rewritten in float32 (`hooks.replace_output`),
so SAEs, ablations and attribution work in float32 on any model.
"""

from __future__ import annotations

from typing import Literal

import torch
from transformers import PretrainedConfig

ModelDtype = Literal["auto", "float32", "bfloat16", "float16"]
_TORCH = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def checkpoint_dtype(config: PretrainedConfig) -> torch.dtype:
    """The dtype the checkpoint declares (config.json `dtype` / `torch_dtype`), float32 when none."""
    declared = getattr(config, "dtype", None)
    if isinstance(declared, str):
        declared = getattr(torch, declared, None)
    return declared if isinstance(declared, torch.dtype) and declared.is_floating_point else torch.float32


def resolve_dtype(dtype: str, device: str | torch.device, config: PretrainedConfig) -> torch.dtype:
    """The torch dtype to load a model in on `device`."""
    if dtype != "auto":
        return _TORCH[dtype]
    return checkpoint_dtype(config) if torch.device(device).type == "cuda" else torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
