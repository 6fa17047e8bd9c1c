"""The whole run: discover, choose flags (a person's file or the suggestions), edit and report.

With `settings.seeds` N > 1, SAE training and everything after it (attribution, suggestions and the
automatic flags, the edit, every row) is repeated with every seed offset by 1..N-1, in
`seeds/seed-<i>/` beside the main run and sharing its activation caches; the main report then gives
the mean and min-max of every row's headline metrics over the N runs.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np

from editing_service.artifacts import ArtifactDir
from editing_service.features import load_lexicon
from editing_service.features.document import FeaturesDocument
from editing_service.features.flags import FlagSet, FlagSource, flags_from_suggestions, read_flags_file
from editing_service.pipeline.common import ProgressFn, quiet
from editing_service.pipeline.discover import run_discover
from editing_service.pipeline.edit import run_edit, write_report
from editing_service.report import Report
from editing_service.report.seeds import summarise_seeds
from editing_service.settings import RunSettings

logger = logging.getLogger(__name__)

AUTO_KINDS: dict[str, tuple[FlagSource, ...]] = {
    "auto": ("lexicon", "protected_attribute"), "auto:all": ("lexicon", "protected_attribute"),
    "auto:lexicon": ("lexicon",), "auto:protected": ("protected_attribute",),
}
BAD_FLAGS = "--flags must be auto, auto:lexicon, auto:protected, auto:all or a flags file; got {value!r}."
SEEDS_NEED_AUTO = (
    "--seeds {n} needs automatic flags (--flags auto, auto:lexicon, auto:protected or auto:all): a flags file "
    "names features of one set of SAEs, and each seed trains its own."
)


def resolve_flags(value: str, out: str | Path, *, lexicon: str = "gendered") -> FlagSet:
    """`auto` (or `auto:all`) picks every suggestion of features.json, `auto:lexicon` and `auto:protected` those of
    one kind; anything else is a flags file."""
    if value in AUTO_KINDS:
        artifacts = ArtifactDir(Path(out))
        document = FeaturesDocument.read(artifacts.require(artifacts.features))
        return flags_from_suggestions(document.suggestions, kind=AUTO_KINDS[value], lexicon=lexicon)
    if value.startswith("auto"):
        raise ValueError(BAD_FLAGS.format(value=value))
    return read_flags_file(value)


def run_all(settings: RunSettings, out: str | Path, *, flags: str = "auto",
            progress: ProgressFn = quiet) -> Report:
    """discover -> flags -> edit (repeated over `settings.seeds`); returns the report."""
    started = time.perf_counter()
    if not flags.startswith("auto"):
        if settings.seeds > 1:
            raise ValueError(SEEDS_NEED_AUTO.format(n=settings.seeds))
        read_flags_file(flags)  # refuse a bad file before the long discovery
    elif flags not in AUTO_KINDS:
        raise ValueError(BAD_FLAGS.format(value=flags))
    run_discover(settings, out, progress=progress)
    lexicon = load_lexicon(settings.suggestions.lexicon).name
    flag_set = resolve_flags(flags, out, lexicon=lexicon)
    unedited_reads: dict[str, np.ndarray] = {}  # the classifier is the same in every repeat
    report = run_edit(out, flag_set, progress=progress, unedited_reads=unedited_reads)
    if settings.seeds > 1:
        reports, runs = [report], ["."]
        for offset in range(1, settings.seeds):
            seed_out = ArtifactDir(Path(out)).seed_run(offset)
            _share_caches(Path(out), seed_out)
            run_discover(settings.with_seed_offset(offset), seed_out, progress=progress, reuse_caches=True)
            reports.append(run_edit(seed_out, resolve_flags(flags, seed_out, lexicon=lexicon),
                                    progress=progress, unedited_reads=unedited_reads))
            runs.append(str(seed_out.relative_to(out)))
        report.seeds = summarise_seeds(reports, [settings.sae.seed + i for i in range(settings.seeds)], runs)
    report.run_seconds = round(time.perf_counter() - started, 1)
    logger.info("Whole run took %.0f s", report.run_seconds)
    write_report(report, ArtifactDir(Path(out)))
    return report


def _share_caches(main: Path, seed_out: Path) -> None:
    """Point the repeat's activation caches at the main run's (links, so nothing is copied)."""
    for role in ("train", "validate"):
        link, target = ArtifactDir(seed_out).cache(role), ArtifactDir(main).cache(role)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            if link.is_symlink():
                link.unlink()
            else:
                shutil.rmtree(link)
        link.symlink_to(target.resolve(), target_is_directory=True)
