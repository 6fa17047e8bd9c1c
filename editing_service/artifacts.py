"""The artifact directory of one run: fixed paths for caches, SAEs, models and reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NOT_DISCOVERED = "{path} has no discovery results ({what} missing): run `discover` first."
INSIDE_A_RUN = ("The output folder {folder} is within the {inner}/ folder of the discovered run {run}; what is "
               "written there would be read back as part of that run. Choose a folder outside it.")
ANOTHER_RUN = ("The edit folder {folder} is the discovered run {run}, not the one being edited ({edited}); the "
               "edit would overwrite its report, flags and edited model. Choose a folder of its own.")


@dataclass(frozen=True)
class ArtifactDir:
    """Paths inside one run's output folder (nothing is created until a step writes)."""

    root: Path

    def require(self, path: Path) -> Path:
        """`path`, one of this run's files, or a clear error naming the run and the file it lacks."""
        if not path.is_file():
            raise FileNotFoundError(NOT_DISCOVERED.format(path=self.root, what=path.relative_to(self.root)))
        return path

    @property
    def is_discovered(self) -> bool:
        return self.run_config.is_file()

    @property
    def folders(self) -> tuple[Path, ...]:
        """The folders discovery and the pipeline fill and read back (caches, SAEs, models, seed runs)."""
        return self.activations, self.saes, self.models, self.seeds

    @property
    def activations(self) -> Path:
        return self.root / "activations"

    def cache(self, role: str) -> Path:
        return self.activations / role

    @property
    def saes(self) -> Path:
        return self.root / "saes"

    def sae(self, site: str) -> Path:
        return self.saes / site

    @property
    def sae_quality(self) -> Path:
        return self.saes / "quality.json"

    @property
    def ablation_means(self) -> Path:
        return self.saes / "ablation_means.safetensors"

    @property
    def seeds(self) -> Path:
        return self.root / "seeds"

    def seed_run(self, offset: int) -> Path:
        return self.seeds / f"seed-{offset}"

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


def check_output_folder(folder: Path, *, edited_run: Path | None = None) -> None:
    """Refuse an output folder that would clobber a discovered run: one within a run's own folders (`saes/`
    would read it back as an SAE), or, for an edit of `edited_run`, another run's folder.

    A run may be written again in place, and an edit may go to the edited run itself or any folder of its own."""
    folder = folder.resolve()
    edited = None if edited_run is None else edited_run.resolve()
    if folder == edited:
        return
    for ancestor in (folder, *folder.parents):
        run = ArtifactDir(ancestor)
        if not run.is_discovered:
            continue
        if ancestor == folder:
            if edited is not None:
                raise ValueError(ANOTHER_RUN.format(folder=folder, run=ancestor, edited=edited))
            continue
        inner = next((f for f in run.folders if folder == f or f in folder.parents), None)
        if inner is not None:
            raise ValueError(INSIDE_A_RUN.format(folder=folder, inner=inner.name, run=ancestor))
