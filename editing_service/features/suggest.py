"""Flag suggestions for candidate features (the circuit), each with its evidence.

Two rules, both configurable:
- lexicon: the share of the feature's activation mass (sum of its token activations) on tokens whose
  normalised string is in a concept lexicon is >= `threshold` (default 0.5), and the feature is active
  on at least `min_active_tokens` tokens (default 10), so that near-dead features are not suggested.
- protected attribute: the example-level activation separates the groups within every class:
  min over classes of |AUROC - 0.5| >= `threshold` (default 0.2). The split must have at least two
  groups in every class (ValueError otherwise, e.g. on a biased training split).

Neither rule suggests a dense feature: one nonzero on more than `max_firing_rate` of the split's tokens.
Ablating it removes part of nearly every token's representation, and a dense feature's small, consistent
shift between groups passes the protected-attribute rule easily (decoder residual streams have many).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, computed_field

from editing_service.activations import ActivationCache
from editing_service.features.activations import (
    FeatureActivations,
    Reduce,
    collect_feature_activations,
    site_name,
)
from editing_service.features.groups import attribute_groups, check_groups_in_every_class, group_separation
from editing_service.features.lexicon import Lexicon, load_lexicon
from editing_service.features.summaries import token_mass
from editing_service.features.tokens import TokenConverter, TokenVocab
from editing_service.sae.splice import Dictionary

if TYPE_CHECKING:
    from editing_service.data import TextSplit

logger = logging.getLogger(__name__)

SuggestionKind = Literal["lexicon", "protected_attribute"]

BAD_LEXICON_THRESHOLD = "The lexicon threshold is a share of activation mass in (0, 1], got {value}."
BAD_AUROC_THRESHOLD = "The protected-attribute threshold is a distance |AUROC - 0.5| in [0, 0.5], got {value}."
BAD_FIRING_RATE = "The firing-rate cap is a share of tokens in (0, 1], got {value}."
NO_TOKENS = "Pass a tokenizer or a TokenVocab to match tokens against a lexicon."
SPLIT_MISMATCH = "Split {split!r} has {n_split} examples but the activations of site {site!r} have {n_acts}."


class Suggestion(BaseModel):
    """A suggestion to flag one feature, with the numbers behind it (its id is written with it, and ignored when
    read back)."""

    model_config = ConfigDict(ser_json_inf_nan="constants")

    site: str
    feature: int
    kind: SuggestionKind
    score: float  # strength of the evidence: the lexicon share, or min within-class |AUROC - 0.5|
    evidence: dict[str, Any]
    reason: str  # one sentence for a reviewer

    @computed_field
    @property
    def id(self) -> str:
        return f"{self.site}/{self.feature}"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _pairs(candidates: Iterable[tuple[Any, int]]) -> list[tuple[str, int]]:
    return [(site_name(s), int(f)) for s, f in dict.fromkeys(candidates)]


def suggest_by_lexicon(
    *,
    activations: Mapping[str, FeatureActivations],
    vocab: TokenVocab,
    candidates: Iterable[tuple[str, int]],
    lexicon: str | Path | Lexicon | Iterable[str] = "gendered",
    threshold: float = 0.5,
    min_active_tokens: int = 10,
    n_top: int = 5,
) -> list[Suggestion]:
    """Candidates whose activation mass falls mostly on lexicon tokens."""
    if not 0 < threshold <= 1:
        raise ValueError(BAD_LEXICON_THRESHOLD.format(value=threshold))
    lex = load_lexicon(lexicon)
    in_lexicon = vocab.mask(lex.words)
    out = []
    for site, feature in _pairs(candidates):
        rows, values = activations[site].token_activations(feature)
        mass = token_mass(rows, values, vocab)
        total = float(mass.sum())
        share = float(mass[in_lexicon].sum()) / total if total > 0 else 0.0
        if rows.size < min_active_tokens or share < threshold:
            continue
        hits = np.flatnonzero(in_lexicon & (mass > 0))
        hits = hits[np.argsort(-mass[hits], kind="stable")][:n_top]
        top = [{"token": vocab.strings[i], "share": round(float(mass[i]) / total, 4)} for i in hits]
        words = ", ".join(t["token"] for t in top)
        out.append(Suggestion(
            site=site, feature=feature, kind="lexicon", score=share,
            evidence={"lexicon": lex.name, "lexicon_share": share, "threshold": threshold,
                      "n_active_tokens": int(rows.size), "min_active_tokens": min_active_tokens,
                      "top_lexicon_tokens": top},
            reason=(f"{share:.0%} of its activation mass is on {lex.name!r} lexicon tokens ({words}) over "
                    f"{rows.size} active tokens (threshold {threshold:.0%})."),
        ))
    logger.info("lexicon %s: %d of the candidates suggested", lex.name, len(out))
    return out


def suggest_by_protected_attribute(
    *,
    activations: Mapping[str, FeatureActivations],
    split: TextSplit,
    candidates: Iterable[tuple[str, int]],
    attributes: Sequence[str] | None = None,
    threshold: float = 0.2,
    example_activation: Reduce = "max",
) -> list[Suggestion]:
    """Candidates whose example activation separates a protected attribute's groups within every class.

    `attributes` defaults to every protected attribute of the split. Raises ValueError when a class of
    the split has a single group of an attribute.
    """
    if not 0 <= threshold <= 0.5:
        raise ValueError(BAD_AUROC_THRESHOLD.format(value=threshold))
    names = list(split.groups) if attributes is None else list(attributes)
    labels = np.asarray(split.labels)
    groups = {a: attribute_groups(split.groups, a, split=split.name) for a in names}
    for a in names:
        check_groups_in_every_class(labels=labels, groups=groups[a], label_names=split.label_names,
                                    attribute=a, split=split.name)
    pairs = _pairs(candidates)
    for site in dict.fromkeys(s for s, _ in pairs):
        n_acts = activations[site].example_max.shape[0]
        if n_acts != len(labels):
            raise ValueError(SPLIT_MISMATCH.format(split=split.name, n_split=len(labels), site=site, n_acts=n_acts))
    out = []
    for site, feature in pairs:
        values = activations[site].example_values(feature, example_activation)
        for a in names:
            sep = group_separation(values, labels=labels, groups=groups[a], label_names=split.label_names,
                                   attribute=a)
            if sep.separation is None or sep.separation < threshold:
                continue
            aurocs = ", ".join(f"{v:.2f} ({c})" for c, v in sep.auroc_by_class.items() if v is not None)
            out.append(Suggestion(
                site=site, feature=feature, kind="protected_attribute", score=sep.separation,
                evidence={"attribute": a, "split": split.name, "example_activation": example_activation,
                          "threshold": threshold, **sep.to_dict()},
                reason=(f"Its example activation separates {a!r} group {sep.positive_group!r} from the rest "
                        f"within every class: AUROC {aurocs}; min |AUROC - 0.5| = {sep.separation:.2f} "
                        f">= {threshold:.2f}."),
            ))
    logger.info("protected attributes %s: %d suggestions", names, len(out))
    return out


def suggest_flags(
    *,
    saes: Mapping[Any, Dictionary],
    cache: ActivationCache,
    split: TextSplit,
    candidates: Iterable[tuple[str, int]],
    tokenizer: TokenConverter | None = None,
    vocab: TokenVocab | None = None,
    lexicon: str | Path | Lexicon | Iterable[str] | None = "gendered",
    lexicon_threshold: float = 0.5,
    min_active_tokens: int = 10,
    attributes: Sequence[str] | None = None,
    attribute_threshold: float = 0.2,
    example_activation: Reduce = "max",
    max_firing_rate: float = 1.0,
    activations: Mapping[str, FeatureActivations] | None = None,
    batch_rows: int = 8192,
) -> list[Suggestion]:
    """Both rules on the `candidates` that fire on at most `max_firing_rate` of the tokens, measured on
    `split` (whose activations are in `cache`).

    `lexicon=None` skips the lexicon rule; `attributes=[]` skips the protected-attribute rule (None: every
    attribute the split has). Activations are encoded once per site unless `activations` are given.
    """
    if not 0 < max_firing_rate <= 1:
        raise ValueError(BAD_FIRING_RATE.format(value=max_firing_rate))
    pairs = _pairs(candidates)
    if activations is None:
        activations = collect_feature_activations(saes=saes, cache=cache, features=pairs, batch_rows=batch_rows)
    sparse = [(site, f) for site, f in pairs if activations[site].firing_rate(f) <= max_firing_rate]
    if len(sparse) < len(pairs):
        logger.info("%d of %d candidates fire on more than %.0f%% of the tokens: not suggested",
                    len(pairs) - len(sparse), len(pairs), 100 * max_firing_rate)
    pairs = sparse
    out: list[Suggestion] = []
    if lexicon is not None:
        if vocab is None:
            if tokenizer is None:
                raise ValueError(NO_TOKENS)
            vocab = TokenVocab.from_cache(cache, tokenizer)
        out += suggest_by_lexicon(activations=activations, vocab=vocab, candidates=pairs, lexicon=lexicon,
                                  threshold=lexicon_threshold, min_active_tokens=min_active_tokens)
    if attributes is None or attributes:
        out += suggest_by_protected_attribute(activations=activations, split=split, candidates=pairs,
                                              attributes=attributes, threshold=attribute_threshold,
                                              example_activation=example_activation)
    return out


def attach_suggestions(cards: Sequence[Any], suggestions: Iterable[Suggestion]) -> None:
    """Append each suggestion's dict to the `suggestions` list of the card with the same id (in place)."""
    by_id = {card.id: card for card in cards}
    for s in suggestions:
        if s.id in by_id:
            by_id[s.id].suggestions.append(s.to_dict())
