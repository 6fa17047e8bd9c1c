"""Abstract base of every SAE: the SAELens parameters, input checks, and `forward = decode(encode(x))`.

Subclasses fill in `encode` (and, for training, `training_loss`); the base owns the order of `forward`, the
affine decoder, the pre-activation `z = (x - b_dec) @ W_enc + b_enc` (SAELens `apply_b_dec_to_input=True`)
and the folding of an input scale into the weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from editing_service.sae.config import SAEConfig

ERR_D_IN = "expected activations whose last dimension is d_in={d_in}, got shape {shape}"


@dataclass
class TrainContext:
    """What one training step needs besides the batch; built by the trainer every step."""

    dead_features: Tensor | None = None  # [n_dead] int64 ids of features that did not fire within the window
    sparsity_scale: float = 1.0  # warm-up multiplier of the L1 / L0 penalty
    aux_k: int = 256  # topk: dead features used by the auxiliary loss
    aux_coefficient: float = 0.0  # weight of the auxiliary loss (the trainer passes the architecture's default)


@dataclass
class StepOutput:
    """One training step's loss (to backpropagate) and detached statistics."""

    loss: Tensor  # scalar
    mse: Tensor  # scalar: sum over d_in of the squared error, mean over tokens
    aux: Tensor  # scalar: weighted auxiliary (topk) or sparsity (relu, jumprelu) loss
    l0: Tensor  # scalar: mean number of active features per token
    fired: Tensor  # [d_sae] bool: features active on at least one token of the batch


class SAE(nn.Module, ABC):
    """A sparse autoencoder with SAELens parameter names and shapes.

    W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]. Encoder and decoder run in the
    parameters' dtype; `forward` returns the input's dtype. Feature activations are dense `[..., d_sae]`.
    """

    architecture: ClassVar[str]
    unit_norm_decoder: ClassVar[bool] = True  # the trainer keeps decoder rows at unit norm
    uses_k: ClassVar[bool] = False  # sparsity set by `cfg.k` (active features per token)
    uses_aux_loss: ClassVar[bool] = False  # can revive dead features with the trainer's auxiliary-k loss
    default_aux_coefficient: ClassVar[float] = 0.0  # that loss's weight unless the trainer is given one

    def __init__(self, cfg: SAEConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if cfg.architecture != self.architecture:
            raise ValueError(
                f"{type(self).__name__} needs architecture {self.architecture!r}, got {cfg.architecture!r}"
            )
        self.cfg = cfg
        # Decoder rows random unit vectors, encoder its transpose (Gao et al. 2024); built in float32 on the
        # CPU so that a seed gives the same SAE on every device.
        w_dec = torch.randn(cfg.d_sae, cfg.d_in, generator=generator)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        opts = {"dtype": cfg.torch_dtype, "device": torch.device(cfg.device)}
        self.W_enc = nn.Parameter(w_dec.T.contiguous().to(**opts))  # [d_in, d_sae]
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae, **opts))  # [d_sae]
        self.W_dec = nn.Parameter(w_dec.to(**opts))  # [d_sae, d_in]
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in, **opts))  # [d_in]

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    @property
    def device(self) -> torch.device:
        return self.W_dec.device

    @property
    def dtype(self) -> torch.dtype:
        return self.W_dec.dtype

    def check_input(self, x: Tensor) -> Tensor:
        """Return `x` in the parameters' dtype, or raise ValueError if its last dimension is not d_in."""
        if x.ndim == 0 or x.shape[-1] != self.cfg.d_in:
            raise ValueError(ERR_D_IN.format(d_in=self.cfg.d_in, shape=tuple(x.shape)))
        return x.to(self.dtype)

    def pre_activations(self, x: Tensor, columns: Tensor | None = None) -> Tensor:
        """z = (x - b_dec) @ W_enc + b_enc, shape [..., d_sae]; only the features `columns` [c] when given,
        shape [..., c]."""
        x = self.check_input(x)
        if columns is None:
            return (x - self.b_dec) @ self.W_enc + self.b_enc
        return (x - self.b_dec) @ self.W_enc[:, columns] + self.b_enc[columns]

    @abstractmethod
    def encode(self, x: Tensor) -> Tensor:
        """Feature activations f [..., d_sae] (dense, mostly zeros) of activations x [..., d_in]."""

    def encode_columns(self, x: Tensor, columns: Tensor) -> Tensor:
        """The activations of the features `columns` [c] alone, [..., c]: `encode(x)[..., columns]`. An
        architecture whose features each depend on their own pre-activation only computes just those columns
        (a c-column product instead of d_sae); this default encodes every feature."""
        return self.encode(x)[..., columns]

    def decode(self, f: Tensor) -> Tensor:
        """x_hat = f @ W_dec + b_dec, shape [..., d_in]."""
        return f.to(self.dtype) @ self.W_dec + self.b_dec

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction decode(encode(x)), in the dtype of `x`."""
        x_hat = self.decode(self.encode(x))
        return x_hat.to(x.dtype) if x.is_floating_point() else x_hat

    @abstractmethod
    def training_loss(self, x: Tensor, ctx: TrainContext) -> StepOutput:
        """Loss and statistics of one batch x [batch, d_in] (already normalised by the trainer)."""

    def train_pre_activations(self, x: Tensor) -> Tensor:
        """Pre-activations for training: x @ W_enc + (b_enc - b_dec @ W_enc).

        Equal to `pre_activations`, but the gradient for b_dec goes through a [d_sae] vector instead of a
        [batch, d_in] @ [d_in, d_sae]^T product: one dense matmul less per step.
        """
        return torch.addmm(self.b_enc - self.b_dec @ self.W_enc, x, self.W_enc)

    def clamp_parameters_(self) -> None:
        """Project parameters back onto their allowed set after an optimiser step (no-op by default)."""

    def drop_workspace_(self) -> None:
        """Free scratch memory kept between training steps (no-op by default)."""

    def finish_training_(self, sample: Tensor) -> None:
        """Called once after the last step, before the folds, with the trainer's normalised token sample
        [n, d_in] (no-op by default; BatchTopK calibrates its inference threshold here)."""

    def inference_form(self) -> SAE:
        """The SAE to save and serve once training is done: itself by default."""
        return self

    @torch.no_grad()
    def fold_input_scale_(self, scale: float) -> None:
        """Make an SAE trained on `scale * x` read raw `x` (in place).

        With z' = z / scale: b_enc and b_dec divide by scale, W_enc and W_dec stay (decoder rows keep their
        norm), features come out in raw units and x_hat' = x_hat / scale. TopK order is unchanged.
        """
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.b_enc.div_(scale)
        self.b_dec.div_(scale)

    @torch.no_grad()
    def fold_decoder_norm_(self) -> None:
        """Give every decoder row unit norm without changing the function (in place).

        W_enc[:, i] and b_enc[i] are multiplied by ||W_dec[i]||, W_dec[i] divided by it: f_i scales by the
        norm and f_i * W_dec[i] is unchanged. Exact for ReLU and JumpReLU (positively homogeneous); for
        TopK it turns a model trained with decoder-norm rescaling into the plain formulas.
        """
        norms = self.W_dec.norm(dim=1).clamp_min(1e-12)  # [d_sae]
        self.W_enc.mul_(norms[None, :])
        self.b_enc.mul_(norms)
        self.W_dec.div_(norms[:, None])
        self._scale_thresholds_(norms)

    def _scale_thresholds_(self, factor: Tensor) -> None:
        """Multiply per-feature thresholds by `factor` (JumpReLU); nothing to do elsewhere."""

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # .to() / .cuda() / .half() all land here: keep cfg.device and cfg.dtype true to the parameters.
        out = super()._apply(fn, recurse)
        self.cfg.device = str(self.W_dec.device)
        self.cfg.dtype = str(self.W_dec.dtype).removeprefix("torch.")
        return out

    def extra_repr(self) -> str:
        return f"d_in={self.cfg.d_in}, d_sae={self.cfg.d_sae}, hook_name={self.cfg.hook_name!r}"
