"""Building feature cards for a list of (site, feature) pairs, typically a circuit, on one split.

The split should have every (class, group) cell (the validate split): on the biased training split the
within-class group AUROCs are undefined and come out null.

Which class a feature pushes toward (`pushes`), first rule that applies:
1. `class_scores` (node scores computed on each class's examples): the class whose score is most
   negative, i.e. the class whose own examples the feature supports; None if no score is negative.
2. `class_effects` (the feature's effect on each class logit, positive = raises it): the class with the
   largest effect relative to the mean over classes; None if all are equal.
3. The sign of the overall score: if negative (it supports the true class on average), the class on
   whose examples it is most active; if positive and there are two classes, the other one; else None.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from editing_service.activations import ActivationCache
from editing_service.features.activations import (
    NO_SAE,
    FeatureActivations,
    Reduce,
    collect_feature_activations,
    site_name,
)
from editing_service.features.card import FeatureCard
from editing_service.features.groups import class_means, group_separation
from editing_service.features.neighbours import decoder_neighbours
from editing_service.features.summaries import (
    DIGITS,
    activation_histogram,
    auto_label,
    top_examples,
    top_tokens,
)
from editing_service.features.tokens import TokenConverter, TokenVocab
from editing_service.sae.splice import Dictionary

if TYPE_CHECKING:
    from editing_service.circuit.scores import NodeScores
    from editing_service.data import TextSplit

logger = logging.getLogger(__name__)

SPLIT_CACHE_MISMATCH = "Split {split!r} has {n_split} examples but the activation cache has {n_cache}."
NO_TOKENS = "Pass a tokenizer or a TokenVocab to name the cached tokens."
CLASS_EFFECTS_LENGTH = "class_effects of {id} has {got} entries; the split has {n} classes."
UNKNOWN_CLASS = "class_scores names class {name!r}; the split's classes are {known}."


def build_feature_cards(
    *,
    features: Sequence[tuple[str, int]],
    saes: Mapping[Any, Dictionary],
    cache: ActivationCache,
    split: TextSplit,
    tokenizer: TokenConverter | None = None,
    vocab: TokenVocab | None = None,
    scores: Mapping[str, NodeScores] | None = None,
    class_scores: Mapping[str, Mapping[str, NodeScores]] | None = None,
    class_effects: Mapping[tuple[str, int], Sequence[float] | np.ndarray] | None = None,
    activations: Mapping[str, FeatureActivations] | None = None,
    example_activation: Reduce = "max",
    n_examples: int = 8,
    window: int = 32,
    n_top_tokens: int = 10,
    n_neighbours: int = 5,
    batch_rows: int = 8192,
) -> list[FeatureCard]:
    """Cards of `features` [(site, feature)], measured on `split` whose activations are in `cache`.

    `scores` are keyed by site, `class_scores` by class name then site, `class_effects` by (site,
    feature) with one entry per class. Precomputed `activations` (site -> FeatureActivations) are reused;
    missing features are encoded, one pass per site. Cards come back ordered by rank.
    """
    if len(split) != cache.n_examples:
        raise ValueError(SPLIT_CACHE_MISMATCH.format(split=split.name, n_split=len(split), n_cache=cache.n_examples))
    if vocab is None:
        if tokenizer is None:
            raise ValueError(NO_TOKENS)
        vocab = TokenVocab.from_cache(cache, tokenizer)
    for name in class_scores or {}:
        if name not in split.label_names:
            raise ValueError(UNKNOWN_CLASS.format(name=name, known=split.label_names))
    pairs = [(site_name(s), int(f)) for s, f in dict.fromkeys(features)]
    records = _activations_for(pairs, saes=saes, cache=cache, given=activations, batch_rows=batch_rows)
    raw = {p: _score(scores, *p) for p in pairs}
    order = sorted(range(len(pairs)), key=lambda i: (raw[pairs[i]] is None, -abs(raw[pairs[i]] or 0.0), i))
    rank = {pairs[i]: r + 1 for r, i in enumerate(order)}
    neighbours = _neighbours(pairs, saes, k=n_neighbours)
    labels = np.asarray(split.labels)
    info = [
        {"label": split.label_names[int(y)], "groups": {a: str(g[i]) for a, g in split.groups.items()}}
        for i, y in enumerate(labels.tolist())
    ]
    cards = []
    for pair in (pairs[i] for i in order):
        site, feature = pair
        record = records[site]
        rows, values = record.token_activations(feature)
        example = record.example_values(feature, example_activation)
        tokens = top_tokens(rows, values, vocab, k=n_top_tokens)
        by_class = class_means(example, labels=labels, label_names=split.label_names)
        per_class_score = _class_scores(class_scores, site, feature)
        effects = _class_effects(class_effects, pair, split.label_names)
        pushes, basis = _pushes(raw[pair], per_class_score, effects, by_class, split.label_names)
        cards.append(FeatureCard(
            site=site, feature=feature, id=f"{site}/{feature}", score=raw[pair], rank=rank[pair],
            pushes=pushes, pushes_basis=basis, label=auto_label(tokens), split=split.name,
            n_tokens=cache.n_tokens, n_examples=cache.n_examples, example_activation=example_activation,
            frac_nonzero=float(rows.size) / max(cache.n_tokens, 1),
            max_activation=round(float(values.max()), DIGITS) if values.size else 0.0,
            activation_histogram=activation_histogram(values),
            top_examples=top_examples(record, feature, vocab=vocab, example_start=cache.example_start,
                                      example_info=info, k=n_examples, window=window),
            top_tokens=tokens,
            by_class=by_class,
            by_group={a: group_separation(example, labels=labels, groups=g, label_names=split.label_names,
                                          attribute=a).to_dict() for a, g in split.groups.items()},
            score_by_class=per_class_score,
            class_effects=effects,
            neighbours=[{"feature": j, "id": f"{site}/{j}", "cosine": round(c, 4), "in_cards": (site, j) in rank}
                        for j, c in neighbours[pair]],
        ))
    logger.info("built %d feature cards on split %s", len(cards), split.name)
    return cards


def _activations_for(
    pairs: list[tuple[str, int]], *, saes: Mapping[Any, Dictionary], cache: ActivationCache,
    given: Mapping[str, FeatureActivations] | None, batch_rows: int,
) -> dict[str, FeatureActivations]:
    """The given records where they cover a site's features, fresh ones for the other sites."""
    given = dict(given or {})
    missing = [
        (s, f) for s, f in pairs
        if s not in given or not np.isin([f for t, f in pairs if t == s], given[s].features).all()
    ]
    fresh = collect_feature_activations(saes=saes, cache=cache, features=missing, batch_rows=batch_rows)
    return {**given, **fresh}


def _score(scores: Mapping[str, NodeScores] | None, site: str, feature: int) -> float | None:
    if scores is None or site not in scores:
        return None
    return float(scores[site].features[feature])


def _class_scores(
    class_scores: Mapping[str, Mapping[str, NodeScores]] | None, site: str, feature: int
) -> dict[str, float] | None:
    if not class_scores:
        return None
    out = {name: float(by_site[site].features[feature]) for name, by_site in class_scores.items() if site in by_site}
    return out or None


def _class_effects(
    class_effects: Mapping[tuple[str, int], Sequence[float] | np.ndarray] | None,
    pair: tuple[str, int],
    label_names: Sequence[str],
) -> dict[str, float] | None:
    if class_effects is None or pair not in class_effects:
        return None
    effects = np.asarray(class_effects[pair], dtype=np.float64).reshape(-1)
    if effects.size != len(label_names):
        raise ValueError(CLASS_EFFECTS_LENGTH.format(id=f"{pair[0]}/{pair[1]}", got=effects.size, n=len(label_names)))
    return {name: float(e) for name, e in zip(label_names, effects, strict=True)}


def _pushes(
    score: float | None,
    score_by_class: dict[str, float] | None,
    effects: dict[str, float] | None,
    by_class: dict[str, dict[str, Any]],
    label_names: Sequence[str],
) -> tuple[str | None, str | None]:
    """The class the feature pushes toward and the rule that decided it (see the module docstring)."""
    if score_by_class:
        name = min(score_by_class, key=lambda c: score_by_class[c])
        return (name if score_by_class[name] < 0 else None), "class_scores"
    if effects:
        centred = {c: e - float(np.mean(list(effects.values()))) for c, e in effects.items()}
        name = max(centred, key=lambda c: centred[c])
        return (name if centred[name] > 0 else None), "class_effects"
    if score is None or score == 0:
        return None, None
    if score < 0:
        means = {c: v["mean"] for c, v in by_class.items() if v["mean"] is not None}
        return (max(means, key=lambda c: means[c]) if means else None), "score_sign_and_activation"
    if len(label_names) == 2:
        active = max(by_class, key=lambda c: by_class[c]["mean"] or 0.0)
        return next(c for c in label_names if c != active), "score_sign_and_activation"
    return None, "score_sign_and_activation"


def _neighbours(
    pairs: list[tuple[str, int]], saes: Mapping[Any, Dictionary], *, k: int
) -> dict[tuple[str, int], list[tuple[int, float]]]:
    by_name = {site_name(s): sae for s, sae in saes.items()}
    out: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for site in dict.fromkeys(s for s, _ in pairs):
        if site not in by_name:
            raise KeyError(NO_SAE.format(site=site, known=sorted(by_name)))
        ids = [f for s, f in pairs if s == site]
        for f, found in zip(ids, decoder_neighbours(by_name[site].W_dec, ids, k=k), strict=True):
            out[(site, f)] = found
    return out
