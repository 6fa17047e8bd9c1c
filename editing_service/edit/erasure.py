"""Erasing a protected attribute's linear directions at a site (LEACE, Belrose et al. 2023).

`ConceptErasure` rewrites a site's output x <- x - ((x - b) R^T) L^T, the affine LEACE eraser of the
`concept-erasure` package: after it, no linear classifier of the token's activation predicts the group
better than a constant on the data it was fitted on (the class-conditional means are equal). For two
groups L and R have rank 1: two thin products per token, nothing next to the block's cost.

`fit_site_erasers` fits one eraser per site on the tokens of a split that has every (class, group) cell
(the validate split), with the classifier's current interventions (the feature ablation) and the erasers
of the earlier sites in place, on a subsample with as many examples in every (class, group) cell, so that
erasing the group cannot erase the class with it. Applied after the feature ablation at the edited sites,
it closes the channel the edit leaves open: the SAE error term and the unflagged features, whatever of
the group they still carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import torch
from concept_erasure import LeaceFitter

from editing_service.model.batching import length_sorted_batches
from editing_service.model.classifier import SiteIntervention, TextClassifier
from editing_service.model.hooks import run_until
from editing_service.model.sites import Site

# The package drops directions whose whitened cross-covariance with the group is under 0.01 (a
# correlation of 0.02 for two balanced groups): what an edit leaves at a later site is often that weak,
# and the eraser would silently do nothing. Its rank is at most groups - 1, so keeping it costs nothing.
SVD_TOL = 1e-9

TOO_FEW_GROUPS = "Erasing {attribute!r} needs at least two groups in the fitting split; found {groups}."
EMPTY_CELL = "Erasing {attribute!r} needs every (class, group) cell in the fitting split; {cell} is empty."


class ConceptErasure(SiteIntervention):
    """The LEACE eraser of one site: x <- x - ((x - bias) @ proj_right.T) @ proj_left.T."""

    TENSORS = ("proj_left", "proj_right", "bias")  # what a saved edit stores

    def __init__(self, site: Site, *, proj_left: torch.Tensor, proj_right: torch.Tensor,
                 bias: torch.Tensor) -> None:
        super().__init__()
        self.site = site
        self.register_buffer("proj_left", proj_left.detach().float().clone())  # [d, r]
        self.register_buffer("proj_right", proj_right.detach().float().clone())  # [r, d]
        self.register_buffer("bias", bias.detach().float().clone())  # [d]
        # The computing form of `rewrite_`: contiguous transposes and the shift, two products per pass.
        self.register_buffer("right_t", self.proj_right.T.contiguous(), persistent=False)  # [d, r]
        self.register_buffer("left_t", self.proj_left.T.contiguous(), persistent=False)  # [r, d]
        self.register_buffer("neg_shift", -(self.bias @ self.proj_right.T), persistent=False)  # [r]

    def saved_tensors(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in self.TENSORS}

    def saved_config(self) -> dict[str, object]:
        return {}

    @classmethod
    def from_saved(cls, site: Site, tensors: dict[str, torch.Tensor], _config: dict) -> ConceptErasure:
        return cls(site, **tensors)

    @property
    def rank(self) -> int:
        return int(self.proj_right.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        delta = x - self.bias.to(x.dtype)
        return x - (delta @ self.proj_right.T.to(x.dtype)) @ self.proj_left.T.to(x.dtype)

    def rewrite_(self, x: torch.Tensor) -> torch.Tensor:
        """In place under inference mode (two thin products), else `forward`."""
        if not torch.is_inference_mode_enabled() or x.dtype != self.proj_left.dtype or not x.is_contiguous():
            return self(x)
        flat = x.view(-1, x.shape[-1])
        coords = torch.addmm(self.neg_shift, flat, self.right_t)  # [tokens, r]
        flat.addmm_(coords, self.left_t, alpha=-1)
        return x

    def extra_repr(self) -> str:
        return f"site={self.site.name}, rank={self.rank}"


def balanced_rows(labels: np.ndarray, groups: np.ndarray, *, attribute: str, seed: int = 0) -> np.ndarray:
    """Row indices with the same number of examples in every (class, group) cell (the smallest cell's)."""
    names = np.unique(groups)
    if len(names) < 2:
        raise ValueError(TOO_FEW_GROUPS.format(attribute=attribute, groups=names.tolist()))
    cells = [np.flatnonzero((labels == c) & (groups == g)) for c in np.unique(labels) for g in names]
    for c in np.unique(labels):
        for g in names:
            if not ((labels == c) & (groups == g)).any():
                raise ValueError(EMPTY_CELL.format(attribute=attribute, cell=(int(c), str(g))))
    n = min(len(cell) for cell in cells)
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(cell, size=n, replace=False) for cell in cells]))


@torch.inference_mode()
def fit_site_erasers(
    classifier: TextClassifier, sites: Sequence[Site], texts: list[str], *, labels: np.ndarray,
    groups: np.ndarray, attribute: str, batch_size: int = 32, seed: int = 0,
) -> list[ConceptErasure]:
    """One LEACE eraser per site for the group of each example (every token of an example has its
    example's group), fitted on a cell-balanced subsample of `texts` with the classifier's current
    interventions in place.

    Sites are fitted in forward order, each with the erasers of the sites before it in place (one forward
    pass per site): an eraser fitted without them would be fitted to activations the served edit never
    produces, and the group's means at later sites would not be equal once the earlier erasers run.
    Returned in the order of `sites`."""
    groups = np.asarray(groups).astype(str)
    rows = balanced_rows(np.asarray(labels), groups, attribute=attribute, seed=seed)
    names = np.unique(groups).tolist()
    code = torch.as_tensor([names.index(g) for g in groups[rows]])
    # Reference coding (one column per group but the first): the same information as one-hot, and
    # the eraser's rank is the number of groups - 1 (1 for two groups) with no spurious direction.
    z_examples = torch.nn.functional.one_hot(code, len(names))[:, 1:].double()
    chosen = [texts[i] for i in rows]
    base = list(classifier.interventions)
    fitted: dict[Site, ConceptErasure] = {}
    try:
        for site in sorted(sites, key=lambda s: s.forward_order):
            classifier.set_interventions([*base, *fitted.values()])
            fitter = _fit_one_site(classifier, site, chosen, z_examples, batch_size=batch_size)
            eraser = fitter.eraser
            fitted[site] = ConceptErasure(site, proj_left=eraser.proj_left, proj_right=eraser.proj_right,
                                          bias=eraser.bias)
    finally:
        classifier.set_interventions(base)
    return [fitted[site] for site in sites]


def _fit_one_site(classifier: TextClassifier, site: Site, texts: list[str], z_examples: torch.Tensor, *,
                  batch_size: int) -> LeaceFitter:
    """The LEACE statistics of one site's tokens over `texts`, each token with its example's group code."""
    fitter: LeaceFitter | None = None
    for batch_rows, batch in length_sorted_batches(classifier.tokenizer, texts, batch_size=batch_size,
                                                   max_length=classifier.max_length):
        batch = batch.to(classifier.device)
        mask = classifier.token_mask(batch["attention_mask"])
        store = run_until(classifier.backbone, [site],
                          partial(classifier.run_backbone, batch["input_ids"], batch["attention_mask"]))
        z_batch = z_examples[torch.as_tensor(batch_rows)].to(classifier.device)
        z = z_batch[:, None, :].expand(-1, mask.shape[1], -1)[mask]
        x = store[site.name][mask].double()
        if fitter is None:
            fitter = LeaceFitter(x.shape[-1], z.shape[-1], dtype=torch.float64, device=classifier.device,
                                 svd_tol=SVD_TOL)
        fitter.update(x, z)
    assert fitter is not None
    return fitter
