"""The SHIFT edit in its served form: only the flagged features' encoder and decoder rows.

At a site, x <- x - sum_{i in flagged} (f_i(x) - a_i) W_dec[i], with a_i = 0 (zero ablation) or the
feature's mean activation (mean ablation). The SAE error term is kept implicitly: only the flagged
features' contribution is removed. f_i(x) = z_i [z_i > theta_i] with z_i = (x - b_dec) . W_enc[:, i] +
b_enc[i] depends on feature i's own rows alone (JumpReLU; ReLU is theta = 0; a TopK feature is served
through learned thresholds, see `editing_service.sae.topk_to_jumprelu`, or through a gate: f_i(x) = z_i
[z_i > 0] [z_i - tau(x) > offset_i] with tau(x) = x . w + c ||x|| + b an estimate of the token's TopK cut,
see `editing_service.sae.fit_topk_gate`; one more dot product and a norm per token).

`forward` computes this literally, out of place (autograd-safe). `rewrite_`, what a classifier's forward
pass uses, runs the folded `ComputingForm` in place under inference mode: one thin encoder product, one
cut and one decoder product. The classifier fuses an ablation with the LEACE eraser that follows it at
its site (`fused_with`, giving an `ErasedAblation`), so the eraser costs no op of its own. For 50
features at each of MiniLM's 6 layers that is 2% of the forward pass's multiply-adds.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from editing_service.edit.computing_form import ComputingForm
from editing_service.edit.erasure import ConceptErasure
from editing_service.model.classifier import SiteIntervention
from editing_service.model.sites import Site
from editing_service.sae import SAE, JumpReLUSAE, ReLUSAE, TopKSAE
from editing_service.sae.convert import TopKGate

AblationMode = Literal["zero", "mean"]

NO_FEATURES = "An ablation at site {site} needs at least one feature."
FEATURE_OUT_OF_RANGE = "Feature {feature} does not exist at site {site}: its SAE has {d_sae} features (0 to {last})."
DUPLICATE_FEATURES = "Feature(s) {features} are listed more than once at site {site}."
TOPK_NEEDS_THRESHOLDS = (
    "Site {site} has a TopK SAE: convert it with editing_service.sae.topk_to_jumprelu(sae, activations) "
    "so each flagged feature can be served through its own threshold."
)
MEAN_NEEDS_MEANS = "Mean ablation at site {site} needs the flagged features' mean activations."


def check_features(site: str, features: list[int], d_sae: int) -> None:
    """Refuse an empty, out-of-range or repeated feature list with a message naming the problem."""
    if not features:
        raise ValueError(NO_FEATURES.format(site=site))
    for feature in features:
        if not 0 <= feature < d_sae:
            raise ValueError(FEATURE_OUT_OF_RANGE.format(feature=feature, site=site, d_sae=d_sae, last=d_sae - 1))
    repeated = sorted({f for f in features if features.count(f) > 1})
    if repeated:
        raise ValueError(DUPLICATE_FEATURES.format(features=repeated, site=site))


class FeatureAblation(SiteIntervention):
    """Removes the flagged features' contribution at one site (buffers hold only their rows)."""

    TENSORS = ("W_enc", "b_enc", "threshold", "W_dec", "b_dec", "mean")  # what a saved edit stores
    GATE_TENSORS = ("gate_weight", "gate_norm", "gate_bias", "gate_offset")  # and, for a gated TopK edit, these

    def __init__(
        self,
        site: Site,
        features: list[int],
        *,
        W_enc: torch.Tensor,  # [d_in, n]
        b_enc: torch.Tensor,  # [n]
        threshold: torch.Tensor,  # [n]
        W_dec: torch.Tensor,  # [n, d_in]
        b_dec: torch.Tensor,  # [d_in]
        mode: AblationMode = "zero",
        mean: torch.Tensor | None = None,  # [n]
        gate_weight: torch.Tensor | None = None,  # [d_in]: tau(x) = x . gate_weight + gate_norm ||x|| + gate_bias
        gate_norm: torch.Tensor | None = None,  # [1]
        gate_bias: torch.Tensor | None = None,  # [1]
        gate_offset: torch.Tensor | None = None,  # [n]
    ) -> None:
        super().__init__()
        self.site = site
        self.features = [int(f) for f in features]
        self.mode: AblationMode = mode
        if mode == "mean" and mean is None:
            raise ValueError(MEAN_NEEDS_MEANS.format(site=site.name))
        n = len(self.features)
        self.register_buffer("W_enc", W_enc.detach().float().clone())
        self.register_buffer("b_enc", b_enc.detach().float().clone())
        self.register_buffer("threshold", threshold.detach().float().clone())
        self.register_buffer("W_dec", W_dec.detach().float().clone())
        self.register_buffer("b_dec", b_dec.detach().float().clone())
        device = W_enc.device  # every buffer lives where the SAE's weights do
        self.register_buffer("mean", (mean if mean is not None else torch.zeros(n)).detach().float().to(device))
        gate = (gate_weight, gate_norm, gate_bias, gate_offset)
        self.gated = gate_weight is not None
        if self.gated != all(t is not None for t in gate):
            raise ValueError("A gated ablation needs gate_weight, gate_norm, gate_bias and gate_offset together.")
        for name, tensor in zip(self.GATE_TENSORS, gate, strict=True):
            if tensor is not None:
                self.register_buffer(name, tensor.detach().float().reshape(-1).to(device, copy=True))
        self.computing = ComputingForm(self)

    @classmethod
    def from_sae(
        cls, site: Site, sae: SAE, features: list[int], *, mode: AblationMode = "zero",
        mean: np.ndarray | None = None, gate: TopKGate | None = None,
    ) -> FeatureAblation:
        """The served form of ablating `features` of `sae` (a TopK SAE must be converted first, or come with
        its `gate`)."""
        check_features(site.name, list(features), sae.d_sae)
        if isinstance(sae, TopKSAE) and gate is None:
            raise TypeError(TOPK_NEEDS_THRESHOLDS.format(site=site.name))
        idx = torch.as_tensor(list(features), dtype=torch.long, device=sae.W_enc.device)
        extra: dict[str, torch.Tensor] = {}
        if gate is not None:
            if not isinstance(sae, TopKSAE):
                raise TypeError(f"A gate serves TopK features; site {site.name} has a {type(sae).__name__}.")
            threshold = torch.zeros(len(idx), device=sae.W_enc.device)
            extra = {"gate_weight": gate.weight, "gate_norm": torch.tensor([gate.norm]),
                     "gate_bias": torch.tensor([gate.bias]),
                     "gate_offset": gate.offset.to(idx.device)[idx]}
        elif isinstance(sae, JumpReLUSAE):
            threshold = sae.threshold[idx]
        elif isinstance(sae, ReLUSAE):
            threshold = torch.zeros(len(idx), device=sae.W_enc.device)
        else:
            raise TypeError(f"Cannot serve an ablation of a {type(sae).__name__}.")
        return cls(
            site, list(features), W_enc=sae.W_enc[:, idx], b_enc=sae.b_enc[idx], threshold=threshold,
            W_dec=sae.W_dec[idx], b_dec=sae.b_dec, mode=mode,
            mean=torch.as_tensor(mean, dtype=torch.float32) if mean is not None else None, **extra,
        )

    def saved_tensors(self) -> dict[str, torch.Tensor]:
        """The tensors that define this edit (`TENSORS`, and `GATE_TENSORS` when gated), as the constructor
        takes them."""
        names = self.TENSORS + (self.GATE_TENSORS if self.gated else ())
        return {name: getattr(self, name) for name in names}

    def saved_config(self) -> dict[str, object]:
        """What a saved edit's config entry records besides the tensors."""
        return {"features": self.features, "mode": self.mode}

    @classmethod
    def from_saved(cls, site: Site, tensors: dict[str, torch.Tensor], config: dict) -> FeatureAblation:
        return cls(site, config["features"], mode=config["mode"], **tensors)

    def activations(self, x: torch.Tensor) -> torch.Tensor:
        """f_i(x) of the flagged features: [..., d_in] -> [..., n]."""
        z = (x - self.b_dec.to(x.dtype)) @ self.W_enc.to(x.dtype) + self.b_enc.to(x.dtype)
        fires = z > self.threshold.clamp(min=0).to(x.dtype)
        if self.gated:
            tau = (x @ self.gate_weight.to(x.dtype) + self.gate_norm.to(x.dtype) * torch.linalg.vector_norm(x, dim=-1)
                   + self.gate_bias.to(x.dtype))
            fires = fires & (z - tau[..., None] > self.gate_offset.to(x.dtype))
        return z * fires

    @torch.no_grad()
    def agreement(self, sae: SAE, x: torch.Tensor) -> dict[str, float]:
        """Precision and recall of this edit's firings against the SAE's codes of its features, on tokens `x`
        [n, d_in] (for a TopK SAE, use tokens held out from the served form's fit)."""
        idx = torch.as_tensor(self.features, dtype=torch.long, device=x.device)
        fired = sae.encode_columns(x, idx) > 0
        served = self.activations(x) > 0
        both = float((fired & served).sum())
        return {"n_tokens": int(x.shape[0]), "sae_firings": int(fired.sum()), "served_firings": int(served.sum()),
                "precision": both / max(float(served.sum()), 1.0), "recall": both / max(float(fired.sum()), 1.0)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The edited hidden state, a new tensor (`x` is left as it is)."""
        f = self.activations(x)
        if self.mode == "mean":
            f = f - self.mean.to(x.dtype)
        return x - f @ self.W_dec.to(x.dtype)

    def rewrite_(self, x: torch.Tensor) -> torch.Tensor:
        """The edited hidden state, written into `x` under inference mode (else `forward(x)`).

        Equal to `forward(x)` up to float rounding: the products run in the computing form.
        """
        return rewrite_with(self.computing, self, x)

    def fused_with(self, following: SiteIntervention) -> SiteIntervention | None:
        """This ablation and the eraser that follows it at this site as one intervention (one encoder
        product, one cut and one decoder product per pass); None for anything else."""
        if isinstance(following, ConceptErasure) and following.site == self.site:
            return ErasedAblation(self, following)
        return None

    def extra_repr(self) -> str:
        return f"site={self.site.name}, features={self.features}, mode={self.mode}, gated={self.gated}"


def rewrite_with(form: ComputingForm, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`form.rewrite_(x)` where it applies (inference mode, `x` contiguous and of the form's dtype), else
    `module(x)`, out of place."""
    if not torch.is_inference_mode_enabled() or x.dtype != form.dtype or not x.is_contiguous():
        return module(x)
    return form.rewrite_(x)


class ErasedAblation(SiteIntervention):
    """A site's feature ablation followed by its LEACE eraser, served as one computing form.

    Not saved as such: a saved edit keeps the two, and the classifier fuses them when it hooks them. The
    two are referred to, not registered (they are registered with the classifier), so that this module
    holds only the folded, unsaved buffers."""

    def __init__(self, ablation: FeatureAblation, erasure: ConceptErasure) -> None:
        super().__init__()
        self.site = ablation.site
        self.parts = (ablation, erasure)
        self.computing = ComputingForm(ablation, erasure)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ablation, erasure = self.parts
        return erasure(ablation(x))

    def rewrite_(self, x: torch.Tensor) -> torch.Tensor:
        return rewrite_with(self.computing, self, x)
