"""The artifact directory of one run: fixed paths for caches, SAEs, models and reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NOT_DISCOVERED = "{path} has no discovery results ({what} missing): run `discover` first."
EDIT_OUT_INSIDE = ("The edit folder {edit_out} is within the {folder}/ folder of the discovered run {run}; an edit "
                   "there would be read back as part of that run. Choose a folder outside it.")
EDIT_OUT_OTHER_RUN = ("The edit folder {edit_out} is the discovered run {run}, not the one being edited ({out}); the "
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
        return self.root / "activations", self.saes, self.models, self.seeds

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


def check_edit_out(out: Path, edit_out: Path) -> None:
    """Refuse an edit folder that would clobber a discovered run: one inside a run's own folders, or another run.

    The edit writes models/, flags.json and report.* into `edit_out`; that may be the edited run itself (the
    default) or any folder of its own, but not, say, `saes/` (read back as an SAE) or another run's folder."""
    out, edit_out = out.resolve(), edit_out.resolve()
    if edit_out == out:
        return
    for folder in (edit_out, *edit_out.parents):
        run = ArtifactDir(folder)
        if not run.is_discovered:
            continue
        if folder == edit_out:
            raise ValueError(EDIT_OUT_OTHER_RUN.format(edit_out=edit_out, run=folder, out=out))
        inside = next((f for f in run.folders if edit_out == f or f in edit_out.parents), None)
        if inside is not None:
            raise ValueError(EDIT_OUT_INSIDE.format(edit_out=edit_out, folder=inside.name, run=folder))
