"""Feature cards and flag suggestions: what a reviewer needs to judge SAE features of a circuit.

`feature_activations` encodes a site's cached tokens once and keeps the chosen features sparsely;
`build_feature_cards` turns them into JSON-serialisable cards; `suggest_flags` proposes features to flag
(concept lexicon, protected-attribute separation within classes), each with its evidence.
"""

from editing_service.features.activations import (
    FeatureActivations,
    collect_feature_activations,
    feature_activations,
)
from editing_service.features.card import FeatureCard
from editing_service.features.cards import build_feature_cards
from editing_service.features.groups import SINGLE_GROUP_CLASS, GroupSeparation, group_separation
from editing_service.features.lexicon import Lexicon, load_lexicon, shipped_lexicons
from editing_service.features.neighbours import decoder_neighbours
from editing_service.features.suggest import (
    Suggestion,
    attach_suggestions,
    suggest_by_lexicon,
    suggest_by_protected_attribute,
    suggest_flags,
)
from editing_service.features.tokens import TokenVocab, normalise_token

__all__ = [
    "SINGLE_GROUP_CLASS",
    "FeatureActivations",
    "FeatureCard",
    "GroupSeparation",
    "Lexicon",
    "Suggestion",
    "TokenVocab",
    "attach_suggestions",
    "build_feature_cards",
    "collect_feature_activations",
    "decoder_neighbours",
    "feature_activations",
    "group_separation",
    "load_lexicon",
    "normalise_token",
    "shipped_lexicons",
    "suggest_by_lexicon",
    "suggest_by_protected_attribute",
    "suggest_flags",
]
