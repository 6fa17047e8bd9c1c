"""`TextClassifier`: a Hugging Face transformer whose decision is a final linear layer, the head.

Two kinds:
- "probe": a base model plus a linear head on the attention-mask mean-pooled output of one block
  (the SHIFT setting); the head is fitted by the service.
- "sequence_classification": an `AutoModelForSequenceClassification`; its head is the last
  `nn.Linear` of its classification module, and the features it reads are captured with a pre-hook.

Everything downstream (activation caching, attribution, the edit) sees a classifier through this
one interface: `sites()`, `head_features()`, `forward()`, `predict_proba()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editing_service.model.batching import clip_texts, length_sorted_batches
from editing_service.model.families import rule_for
from editing_service.model.head import fit_linear_head
from editing_service.model.hooks import (
    Handles,
    capture,
    capture_input,
    chained,
    past_leading,
    replace_output,
)
from editing_service.model.sites import Site, SiteKind, find_sites, resolve_sites

ClassifierKind = Literal["probe", "sequence_classification"]

NOT_FITTED = "This classifier's head is not fitted yet: call fit_head(features, labels) first."
HEAD_NOT_FOUND = (
    "Cannot find the classification head of {arch}: expected a final nn.Linear at one of {paths}."
)
HEAD_SHAPE = "New head has shape {new}, the model's head {current}."


@dataclass(frozen=True)
class ModelSource:
    """Where the backbone came from, for provenance."""

    path: str
    name_or_path: str
    weights_sha256: str
    embedded_default: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over non-pad positions: [B, T, d] -> [B, d]."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def find_head(model: nn.Module) -> tuple[str, nn.Linear]:
    """The final linear layer of a sequence-classification model (where is its family rule's)."""
    paths = rule_for(model).head_paths
    for path in paths:
        try:
            module = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(module, nn.Linear):
            return path, module
    raise ValueError(HEAD_NOT_FOUND.format(arch=type(model).__name__, paths=list(paths)))


def copy_head(head: nn.Linear) -> nn.Linear:
    """An independent copy of a linear head, with a bias exactly when `head` has one."""
    copy = nn.Linear(head.in_features, head.out_features, bias=head.bias is not None,
                     device=head.weight.device, dtype=head.weight.dtype)
    copy.load_state_dict(head.state_dict())
    return copy


def head_logits(head: nn.Linear, features: np.ndarray) -> torch.Tensor:
    """Logits [n, C] of a head on precomputed features [n, d] (no gradient)."""
    with torch.no_grad():
        return head(torch.from_numpy(np.asarray(features)).to(head.weight))


class SiteIntervention(nn.Module):
    """A module that rewrites one site's hidden output: `forward(hidden) -> hidden`."""

    site: Site

    def rewrite_(self, hidden: torch.Tensor) -> torch.Tensor:
        """What the classifier's forward pass uses; may overwrite `hidden` in place (default: `forward`)."""
        return self(hidden)

    def fused_with(self, following: SiteIntervention) -> SiteIntervention | None:
        """One intervention doing this one then `following` (at the same site) at less cost, or None."""
        return None


def fused(interventions: list[SiteIntervention]) -> list[SiteIntervention]:
    """`interventions` of one site, in order, with each neighbouring pair that can be fused fused."""
    out: list[SiteIntervention] = []
    for m in interventions:
        merged = out[-1].fused_with(m) if out else None
        if merged is None:
            out.append(m)
        else:
            out[-1] = merged
    return out


class TextClassifier(nn.Module):
    """A transformer classifier with an identifiable linear head and hookable sites.

    `interventions` (for example the SHIFT ablation) are applied on every forward pass.
    """

    def __init__(
        self,
        *,
        backbone: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        classes: list[str],
        kind: ClassifierKind,
        source: ModelSource,
        head: nn.Linear | None = None,
        probe_layer: int | None = None,
        max_length: int = 256,
        offloaded_to: torch.device | None = None,
    ) -> None:
        super().__init__()
        # set when the backbone is spread over device, CPU and disk and computes on this device
        self.offloaded_to = offloaded_to
        self.backbone = backbone.eval()
        self.tokenizer = tokenizer
        self.classes = list(classes)
        self.kind: ClassifierKind = kind
        self.source = source
        self.max_length = max_length
        self.probe_layer = probe_layer
        self._head_path: str | None = None
        self.interventions = nn.ModuleList()
        self._fused_interventions = nn.ModuleList()
        self._intervention_hooks: list[Handles] = []
        self.rule = rule_for(backbone)
        if kind == "probe":
            if probe_layer is None:
                raise ValueError("A probe classifier needs probe_layer.")
            if not 0 <= probe_layer < self.n_layers:
                raise ValueError(f"probe_layer must be in [0, {self.n_layers}), got {probe_layer}.")
            self.probe_head = head
            self.probe_site: Site | None = find_sites(backbone)[probe_layer]
        else:
            self._head_path, _ = find_head(backbone)
            self.probe_site = None
            self.probe_head = None

    # ---- structure -------------------------------------------------------------------------
    @property
    def head(self) -> nn.Linear | None:
        if self.kind == "probe":
            return self.probe_head
        return self.backbone.get_submodule(self._head_path)  # type: ignore[arg-type, return-value]

    @property
    def is_fitted(self) -> bool:
        return self.head is not None

    @property
    def device(self) -> torch.device:
        """Where the classifier computes: its weights' device, or the execution device of an offloaded backbone."""
        if self.offloaded_to is not None:
            return self.offloaded_to
        return next(self.backbone.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the backbone's weights."""
        return next(self.backbone.parameters()).dtype

    @property
    def n_layers(self) -> int:
        """Number of layers (block applications; an encoder-decoder's encoder and decoder blocks)."""
        return len(self.rule.blocks(self.backbone))

    def sites(self, kinds: tuple[SiteKind, ...] = ("block",)) -> list[Site]:
        return find_sites(self.backbone, kinds=kinds)

    def resolve_sites(self, names: list[str] | None) -> list[Site]:
        return resolve_sites(self.backbone, names)

    def set_head(self, head: nn.Linear) -> None:
        """Replace the head's weights and bias, or its lack of one (decoder heads have none). The module
        object of a sequence classifier stays in place."""
        if self.kind == "probe":
            self.probe_head = copy_head(head).to(self.device)
            return
        current = self.head
        assert current is not None
        if current.weight.shape != head.weight.shape:
            raise ValueError(HEAD_SHAPE.format(new=tuple(head.weight.shape), current=tuple(current.weight.shape)))
        with torch.no_grad():
            current.weight.copy_(head.weight)
        current.bias = None if head.bias is None else nn.Parameter(
            head.bias.detach().to(current.weight), requires_grad=current.weight.requires_grad)

    def fit_head(self, features: np.ndarray, labels: np.ndarray, **kwargs: float) -> TextClassifier:
        """Fit the head on precomputed head features; returns self."""
        self.set_head(fit_linear_head(features, labels, n_classes=len(self.classes), **kwargs))
        return self

    def set_interventions(self, interventions: list[SiteIntervention]) -> None:
        """Interventions applied on every forward pass from now on (replacing any earlier ones).

        They are part of the model: each is hooked onto its site ahead of any other hook, so whatever
        reads a site (a `capture`, the probe head) sees the edited output. Several at one site run in
        list order.
        """
        for handle in self._intervention_hooks:
            handle.remove()
        self.interventions = nn.ModuleList(interventions).to(self.device)
        # One hook per site (a hook call costs time on every pass), running that site's edits in order,
        # fused where they can be (an ablation and the eraser after it run as one). The fused modules are
        # kept as submodules so they follow the classifier across devices; they hold no saved tensors.
        by_site: dict[Site, list[SiteIntervention]] = {}
        for m in self.interventions:
            by_site.setdefault(m.site, []).append(m)
        served = {site: fused(ms) for site, ms in by_site.items()}
        self._fused_interventions = nn.ModuleList(
            m for ms in served.values() for m in ms if not any(m is o for o in self.interventions))
        self._intervention_hooks = [
            replace_output(self.backbone, site, past_leading(self.rule.sink_positions,
                                                            chained([m.rewrite_ for m in ms])), first=True)
            for site, ms in served.items()
        ]

    def token_mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, T] bool: the tokens that SAEs are trained on and read from, and that the edit rewrites: every
        real token past the family's sink positions (`FamilyRule.sink_positions`)."""
        mask = attention_mask.bool()
        if self.rule.sink_positions:
            mask = mask & (mask.cumsum(-1) > self.rule.sink_positions)
        return mask

    def token_counts(self, lengths: np.ndarray) -> np.ndarray:
        """How many tokens of `token_mask` texts of these token lengths have."""
        return np.maximum(np.asarray(lengths) - self.rule.sink_positions, 0)

    def _pooled_tokens(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """The tokens a probe averages: those of `token_mask`, or every real token of a text that has none."""
        if not self.rule.sink_positions:
            return attention_mask
        tokens = self.token_mask(attention_mask)
        return torch.where(tokens.any(-1, keepdim=True), tokens, attention_mask.bool())

    # ---- computation -----------------------------------------------------------------------
    def run_backbone(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        """The backbone's own forward output, with the extra inputs its family needs (T5's decoder ids)."""
        extra = self.rule.forward_kwargs(self.backbone, input_ids)
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra)

    def head_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(features the head reads [B, d], logits [B, C] or None when the head is not fitted)."""
        if self.kind == "probe":
            site = self.probe_site
            assert site is not None
            with capture(self.backbone, [site], detach=False) as store:
                self.run_backbone(input_ids, attention_mask)
            features = mean_pool(store[site.name], self._pooled_tokens(attention_mask))
            head = self.probe_head
            return features, (head(features) if head is not None else None)
        head = self.head
        assert head is not None
        with capture_input(head) as store:
            logits = self.run_backbone(input_ids, attention_mask).logits
        features = store["input"]
        if features.dim() == 3:  # decoder classifiers score every token and keep one per text
            position = self.rule.read_position(input_ids, attention_mask, self.backbone.config)
            features = features[torch.arange(features.shape[0], device=features.device), position]
        return features, logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class logits [B, C]."""
        if not self.is_fitted:
            raise ValueError(NOT_FITTED)
        _, logits = self.head_features(input_ids, attention_mask)
        assert logits is not None
        return logits

    @torch.inference_mode()
    def predict_proba(self, texts: list[str], *, batch_size: int = 32, lengths: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities [n, C] in the order of `self.classes` (texts clipped before tokenising,
        see `clip_texts`); `lengths`, the texts' token counts if already known, saves counting them again."""
        if not self.is_fitted:
            raise ValueError(NOT_FITTED)
        out = np.zeros((len(texts), len(self.classes)), dtype=np.float32)
        for rows, batch in length_sorted_batches(
            self.tokenizer, clip_texts(texts, self.max_length), batch_size=batch_size, max_length=self.max_length,
            lengths=lengths,
        ):
            batch = batch.to(self.device)
            logits = self(batch["input_ids"], batch["attention_mask"])
            out[rows] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return out

    def predict(self, texts: list[str], *, batch_size: int = 32) -> list[str]:
        """Predicted class names."""
        proba = self.predict_proba(texts, batch_size=batch_size)
        return [self.classes[i] for i in proba.argmax(axis=1)]
