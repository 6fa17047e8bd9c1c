"""The artifact directory of one run: fixed paths for caches, SAEs, models and reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ArtifactDir:
    """Paths inside one run's output folder (nothing is created until a step writes)."""

    root: Path

    def cache(self, role: str) -> Path:
        return self.root / "activations" / role

    @property
    def saes(self) -> Path:
        return self.root / "saes"

    def sae(self, site: str) -> Path:
        return self.saes / site

    @property
    def sae_quality(self) -> Path:
        return self.saes / "quality.json"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def original_model(self) -> Path:
        return self.models / "original"

    @property
    def edited_model(self) -> Path:
        return self.models / "edited"

    @property
    def attribution(self) -> Path:
        return self.root / "attribution.json"

    @property
    def features(self) -> Path:
        return self.root / "features.json"

    @property
    def circuit(self) -> Path:
        return self.root / "circuit.json"

    @property
    def flags(self) -> Path:
        return self.root / "flags.json"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def run_config(self) -> Path:
        return self.root / "run.json"
