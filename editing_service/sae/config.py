"""The one configuration object of a sparse autoencoder, shared by every architecture.

`SAEConfig` says what an SAE is (architecture, sizes, dtype, where it was hooked) and how its sparsity was
trained (k, L1 or L0 coefficient). It is validated when built and round-trips through `to_dict` /
`from_dict`; the SAELens dialect of `cfg.json` is handled in `editing_service.sae.io`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from editing_service.sae.registry import ERR_UNKNOWN_ARCHITECTURE, get_sae_class, known_architectures

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}

# Keys that cfg.json keeps inside its `metadata` block for its own use; a free metadata dict may not reuse them.
RESERVED_METADATA_KEYS = frozenset(
    {"hook_name", "model_name", "sae_lens_version", "sae_lens_training_version"}
)

ERR_UNKNOWN_DTYPE = "unknown dtype {name!r}; known dtypes: {known}"
ERR_K_RANGE = "k must be an integer with 1 <= k <= d_sae ({d_sae}), got {k}"
ERR_UNKNOWN_KEYS = "unknown SAEConfig field(s): {keys}"


def normalize_dtype_name(name: str | torch.dtype) -> str:
    """Return the canonical dtype name ("float32", ...) for a name such as "torch.float32" or a torch dtype."""
    text = str(name).removeprefix("torch.")
    if text not in DTYPES:
        raise ValueError(ERR_UNKNOWN_DTYPE.format(name=str(name), known=sorted(DTYPES)))
    return text


@dataclass
class SAEConfig:
    """Configuration of one sparse autoencoder.

    Parameters
    ----------
    architecture : "topk", "batchtopk", "relu" or "jumprelu" (any name in the registry).
    d_in : width of the activations the SAE reads.
    d_sae : number of dictionary features.
    k : active features per token (topk; the mean over tokens for batchtopk; None for the others).
    l1_coefficient : weight of the decoder-norm-weighted L1 penalty (relu training).
    l0_coefficient : weight of the straight-through L0 penalty (jumprelu training).
    jumprelu_bandwidth : width of the rectangle kernel of the threshold's pseudo-gradient (jumprelu).
    dtype : parameter dtype name.
    device : device the parameters are created on.
    hook_name : our site name, for example "blocks.0.out".
    model_name : the classifier the activations came from.
    metadata : free JSON-serialisable notes (training statistics, provenance).
    """

    architecture: str
    d_in: int
    d_sae: int
    k: int | None = None
    l1_coefficient: float = 5.0
    l0_coefficient: float = 1.0
    jumprelu_bandwidth: float = 0.001
    dtype: str = "float32"
    device: str = "cpu"
    hook_name: str | None = None
    model_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = known_architectures()
        if self.architecture not in known:
            raise ValueError(ERR_UNKNOWN_ARCHITECTURE.format(name=self.architecture, known=list(known)))
        for name in ("d_in", "d_sae"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if get_sae_class(self.architecture).uses_k:
            if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= self.d_sae:
                raise ValueError(ERR_K_RANGE.format(d_sae=self.d_sae, k=self.k))
        elif self.k is not None:
            users = [name for name in known if get_sae_class(name).uses_k]
            raise ValueError(f"k is only used by the {' and '.join(users)} architectures; got k={self.k} for "
                             f"{self.architecture!r}")
        for name in ("l1_coefficient", "l0_coefficient"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.jumprelu_bandwidth <= 0:
            raise ValueError(f"jumprelu_bandwidth must be > 0, got {self.jumprelu_bandwidth}")
        self.dtype = normalize_dtype_name(self.dtype)
        self.device = str(self.device)
        clash = RESERVED_METADATA_KEYS.intersection(self.metadata)
        if clash:
            raise ValueError(
                f"metadata may not use the reserved key(s) {sorted(clash)}; they are config fields"
            )

    @property
    def torch_dtype(self) -> torch.dtype:
        """The parameters' torch dtype."""
        return DTYPES[self.dtype]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy of every field, `architecture` included."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAEConfig:
        """Build a config from `to_dict` output; unknown keys are refused."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(ERR_UNKNOWN_KEYS.format(keys=unknown))
        values = dict(data)
        values["metadata"] = dict(values.get("metadata") or {})
        return cls(**values)
