"""Feature cards as plain text, for reviewing a discovered run in a terminal (`editing-service features`)."""

from __future__ import annotations

import json
from pathlib import Path

from editing_service.artifacts import ArtifactDir

UNKNOWN_SITE = "The run has no site {site!r}; its sites are {sites}."


def _card_lines(card: dict) -> list[str]:
    suggestions = ", ".join(f"{s['kind']} ({s['score']:.2f})" for s in card.get("suggestions") or []) or "-"
    lines = [
        f"{card['id']}  rank {card['rank']}  score {card['score']:+.4f}  pushes {card.get('pushes')}  "
        f"label {card.get('label')!r}",
        f"  density {card['frac_nonzero']:.4f}  max {card['max_activation']:.3f}  suggestions: {suggestions}",
    ]
    by_class = card.get("by_class") or {}
    if by_class:
        lines.append("  mean by class: " + ", ".join(f"{k} {v['mean']:.3f}" for k, v in by_class.items()))
    for attribute, stats in (card.get("by_group") or {}).items():
        if stats.get("auroc") is not None:
            lines.append(f"  {attribute}: AUROC within classes {stats['auroc']:.3f}")
    for example in (card.get("top_examples") or [])[:2]:
        tokens = " ".join(f"[{t}]" if v > 0 else t for t, v in zip(example["tokens"], example["values"], strict=False))
        lines.append(f"  e.g. ({example.get('label')}) {tokens[:160]}")
    return lines


def format_cards(out: str | Path, *, limit: int = 20, site: str | None = None, suggested_only: bool = False) -> str:
    """The cards of a discovered run as text, strongest first."""
    artifacts = ArtifactDir(Path(out))
    document = json.loads(artifacts.require(artifacts.features).read_text())
    cards = document["cards"]
    if site is not None and site not in document["sites"]:
        raise ValueError(UNKNOWN_SITE.format(site=site, sites=document["sites"]))
    if site is not None:
        cards = [c for c in cards if c["site"] == site]
    if suggested_only:
        cards = [c for c in cards if c.get("suggestions")]
    return "\n".join(line for card in cards[:limit] for line in _card_lines(card))
