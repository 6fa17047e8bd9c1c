"""The SHIFT edit in its served form: only the flagged features' encoder and decoder rows.

At a site, x <- x - sum_{i in flagged} (f_i(x) - a_i) W_dec[i], with a_i = 0 (zero ablation) or the
feature's mean activation (mean ablation). The SAE error term is kept implicitly: only the flagged
features' contribution is removed. f_i(x) = z_i [z_i > theta_i] with z_i = (x - b_dec) . W_enc[:, i] +
b_enc[i] depends on feature i's own rows alone (JumpReLU; ReLU is theta = 0; a TopK feature is served
through learned thresholds, see `editing_service.sae.topk_to_jumprelu`), so the edited model costs
two thin matrix products per edited site (b_dec folded into the encoder bias, the decode fused with the
subtraction: `addmm`), about 1% of a MiniLM forward pass for 50 features per site.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from editing_service.model.classifier import SiteIntervention
from editing_service.model.sites import Site
from editing_service.sae import SAE, JumpReLUSAE, ReLUSAE, TopKSAE

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
        self.register_buffer("mean", (mean if mean is not None else torch.zeros(n)).detach().float().clone())
        # z = (x - b_dec) W_enc + b_enc = x W_enc + (b_enc - b_dec W_enc); mean ablation adds back mean W_dec.
        self.register_buffer("b_enc_folded", self.b_enc - self.b_dec @ self.W_enc)
        self.register_buffer("mean_decoded", self.mean @ self.W_dec)

    @classmethod
    def from_sae(
        cls, site: Site, sae: SAE, features: list[int], *, mode: AblationMode = "zero",
        mean: np.ndarray | None = None,
    ) -> FeatureAblation:
        """The served form of ablating `features` of `sae` (a TopK SAE must be converted first)."""
        check_features(site.name, list(features), sae.d_sae)
        if isinstance(sae, TopKSAE):
            raise TypeError(TOPK_NEEDS_THRESHOLDS.format(site=site.name))
        idx = torch.as_tensor(list(features), dtype=torch.long, device=sae.W_enc.device)
        if isinstance(sae, JumpReLUSAE):
            threshold = sae.threshold[idx]
        elif isinstance(sae, ReLUSAE):
            threshold = torch.zeros(len(idx), device=sae.W_enc.device)
        else:
            raise TypeError(f"Cannot serve an ablation of a {type(sae).__name__}.")
        return cls(
            site, list(features), W_enc=sae.W_enc[:, idx], b_enc=sae.b_enc[idx], threshold=threshold,
            W_dec=sae.W_dec[idx], b_dec=sae.b_dec, mode=mode,
            mean=torch.as_tensor(mean, dtype=torch.float32) if mean is not None else None,
        )

    def activations(self, x: torch.Tensor) -> torch.Tensor:
        """f_i(x) of the flagged features: [..., d_in] -> [..., n]."""
        z = (x - self.b_dec.to(x.dtype)) @ self.W_enc.to(x.dtype) + self.b_enc.to(x.dtype)
        return z * (z > self.threshold.to(x.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != self.W_enc.dtype:
            f = self.activations(x)
            if self.mode == "mean":
                f = f - self.mean.to(x.dtype)
            return x - f @ self.W_dec.to(x.dtype)
        flat = x.reshape(-1, x.shape[-1])
        z = torch.addmm(self.b_enc_folded, flat, self.W_enc)  # [tokens, n]
        out = torch.addmm(flat, z * (z > self.threshold), self.W_dec, alpha=-1)
        if self.mode == "mean":
            out = out + self.mean_decoded
        return out.reshape(x.shape)

    def extra_repr(self) -> str:
        return f"site={self.site.name}, features={self.features}, mode={self.mode}"
