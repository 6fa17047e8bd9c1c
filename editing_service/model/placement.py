"""Placing a model that does not fit its device: the weights that fit stay there, the rest are offloaded to
CPU memory and then to disk (read straight from the checkpoint's safetensors files), and every layer still
computes on the one device (accelerate's dispatch).

Everything the service computes (SAEs, edits, attribution, heads) therefore lives on that one execution
device, as with a model held whole. A sequence classifier's head is never offloaded: it is refitted, replaced
and saved, so its weights must be real tensors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

GB = 1024**3


@dataclass(frozen=True)
class DeviceMap:
    """A budget for the weights: `device_gb` on the execution device, then `cpu_gb` in CPU memory when the
    device is a GPU, then disk. None: what is free there."""

    device_gb: float | None = None
    cpu_gb: float | None = None

    def max_memory(self, device: torch.device) -> dict[int | str, int]:
        """accelerate's `max_memory` for this budget on `device`: the device (and the CPU behind a GPU) only."""
        from accelerate.utils import get_max_memory

        free = get_max_memory()
        budget = {device_key(device): _bytes(self.device_gb, free[device_key(device)])}
        if device.type == "cuda":
            budget["cpu"] = _bytes(self.cpu_gb, free["cpu"])
        return budget


def _bytes(gb: float | None, free: int) -> int:
    return free if gb is None else int(gb * GB)


def device_key(device: torch.device) -> int | str:
    """The device's key in accelerate's maps and budgets."""
    return (device.index or 0) if device.type == "cuda" else "cpu"


def offload_map(
    model_class: type[PreTrainedModel], config: PretrainedConfig, *, device: torch.device, dtype: torch.dtype,
    placement: DeviceMap, keep: Callable[[nn.Module], tuple[str, ...]] = lambda _: (),
) -> dict[str, int | str]:
    """A device map for `model_class(config)` on `device`: whole layers fill the budget in order and overflow to
    CPU memory and disk; the modules `keep` names (given the model, weightless) stay on the device."""
    from accelerate import infer_auto_device_map, init_empty_weights

    with init_empty_weights():
        empty = model_class.from_config(config, dtype=dtype)
    mapping = infer_auto_device_map(empty, max_memory=placement.max_memory(device),
                                    no_split_module_classes=empty._no_split_modules, dtype=dtype)
    for name in keep(empty):
        mapping = _on_device(empty, mapping, name, device_key(device))
    return mapping


def _under(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def _on_device(model: nn.Module, mapping: dict[str, int | str], target: str,
               key: int | str) -> dict[str, int | str]:
    """`mapping` with the module `target` on the device: a group holding it is split into its children and
    its own tensors until `target` is an entry of its own."""
    out = dict(mapping)
    while (holder := next((name for name in out if _under(target, name) and name != target), None)) is not None:
        where = out.pop(holder)
        module = model.get_submodule(holder)
        prefix = f"{holder}." if holder else ""
        for name, _ in [*module.named_children(), *module.named_parameters(recurse=False),
                        *module.named_buffers(recurse=False)]:
            out[prefix + name] = where
    return {name: (key if _under(name, target) else place) for name, place in out.items()}


def placement_summary(model: PreTrainedModel) -> str:
    """How many of the device map's modules sit where, e.g. "cpu: 3, disk: 9"."""
    counts = Counter(str(place) for place in getattr(model, "hf_device_map", {}).values())
    return ", ".join(f"{place}: {n}" for place, n in sorted(counts.items()))
