"""The whole run: discover, choose flags (a person's file or the suggestions), edit and report."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from editing_service.artifacts import ArtifactDir
from editing_service.features import Suggestion, load_lexicon
from editing_service.features.flags import FlagSet, FlagSource, flags_from_suggestions, read_flags_file
from editing_service.pipeline.common import ProgressFn, quiet
from editing_service.pipeline.discover import run_discover
from editing_service.pipeline.edit import run_edit
from editing_service.settings import RunSettings

logger = logging.getLogger(__name__)

AUTO_KINDS: dict[str, tuple[FlagSource, ...]] = {
    "auto": ("lexicon",), "auto:lexicon": ("lexicon",), "auto:protected": ("protected_attribute",),
    "auto:all": ("lexicon", "protected_attribute"),
}
BAD_FLAGS = "--flags must be auto, auto:lexicon, auto:protected, auto:all or a flags file; got {value!r}."


def resolve_flags(value: str, out: str | Path, *, lexicon: str = "gendered") -> FlagSet:
    """`auto...` picks the suggestions of one kind (`auto:all`: of every kind) from features.json; anything
    else is a flags file."""
    if value in AUTO_KINDS:
        document = json.loads(ArtifactDir(Path(out)).features.read_text())
        suggestions = [Suggestion(**{k: v for k, v in s.items() if k != "id"}) for s in document["suggestions"]]
        return flags_from_suggestions(suggestions, kind=AUTO_KINDS[value], lexicon=lexicon)
    if value.startswith("auto"):
        raise ValueError(BAD_FLAGS.format(value=value))
    return read_flags_file(value)


def run_all(settings: RunSettings, out: str | Path, *, flags: str = "auto",
            progress: ProgressFn = quiet) -> dict[str, Any]:
    """discover -> flags -> edit; returns the report."""
    started = time.perf_counter()
    if not flags.startswith("auto"):
        read_flags_file(flags)  # refuse a bad file before the long discovery
    run_discover(settings, out, progress=progress)
    flag_set = resolve_flags(flags, out, lexicon=load_lexicon(settings.suggestions.lexicon).name)
    report = run_edit(out, flag_set, progress=progress)
    seconds = round(time.perf_counter() - started, 1)
    logger.info("Whole run took %.0f s", seconds)
    report["run_seconds"] = seconds
    ArtifactDir(Path(out)).report_json.write_text(json.dumps(report, indent=2))
    return report
