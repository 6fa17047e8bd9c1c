"""Feature cards as plain text, for reviewing a discovered run in a terminal (`editing-service features`)."""

from __future__ import annotations

from pathlib import Path

from editing_service.artifacts import ArtifactDir
from editing_service.features.card import FeatureCard
from editing_service.features.document import FeaturesDocument

UNKNOWN_SITE = "The run has no site {site!r}; its sites are {sites}."


def _card_lines(card: FeatureCard) -> list[str]:
    suggestions = ", ".join(f"{s['kind']} ({s['score']:.2f})" for s in card.suggestions) or "-"
    score = "-" if card.score is None else f"{card.score:+.4f}"
    lines = [
        f"{card.id}  rank {card.rank}  score {score}  pushes {card.pushes}  label {card.label!r}",
        f"  density {card.frac_nonzero:.4f}  max {card.max_activation:.3f}  suggestions: {suggestions}",
    ]
    if card.by_class:
        lines.append("  mean by class: " + ", ".join(f"{k} {v['mean']:.3f}" for k, v in card.by_class.items()))
    for attribute, stats in card.by_group.items():
        if stats.get("auroc") is not None:
            lines.append(f"  {attribute}: AUROC within classes {stats['auroc']:.3f}")
    for example in card.top_examples[:2]:
        tokens = " ".join(f"[{t}]" if v > 0 else t for t, v in zip(example["tokens"], example["values"], strict=False))
        lines.append(f"  e.g. ({example.get('label')}) {tokens[:160]}")
    return lines


def format_cards(out: str | Path, *, limit: int = 20, site: str | None = None, suggested_only: bool = False) -> str:
    """The cards of a discovered run as text, strongest first."""
    artifacts = ArtifactDir(Path(out))
    document = FeaturesDocument.read(artifacts.require(artifacts.features))
    if site is not None and site not in document.sites:
        raise ValueError(UNKNOWN_SITE.format(site=site, sites=document.sites))
    cards = [c for c in document.cards if (site is None or c.site == site) and (c.suggestions or not suggested_only)]
    return "\n".join(line for card in cards[:limit] for line in _card_lines(card))
