"""Flags: a reviewer's verdict on a feature (spurious or task-relevant), with rationale and reviewer.

A `FlagSet` is what the edit step consumes: the features flagged spurious are ablated. It also says
how the flags were chosen (`policy`), which every report states. Flags files are YAML or JSON:

    policy: "Reviewed by A. Reviewer"      # optional
    flags:
      - {site: blocks.0.out, feature: 123, state: spurious, rationale: "fires on 'she'", reviewer: ana}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from editing_service.features.suggest import Suggestion

FlagState = Literal["spurious", "task_relevant"]
FlagSource = Literal["person", "lexicon", "protected_attribute"]

CONFLICTING_FLAGS = "Feature {id} is flagged more than once with different states: {states}."
NO_SPURIOUS = "No feature is flagged spurious, so there is nothing to ablate."
FLAGS_FILE_NOT_FOUND = "Flags file {path} does not exist."
FLAGS_FILE_INVALID = "Flags file {path} is invalid: {problem}"
NO_SUGGESTIONS = "No feature was suggested by the {kind} rule, so 'auto' flags nothing."
NO_KINDS = "Flags from suggestions need at least one suggestion kind."
POLICY_BY_SOURCE = {
    "lexicon": "every circuit feature whose activation mass falls mostly on the words of the concept lexicon "
    "{lexicon!r}",
    "protected_attribute": "every circuit feature whose activation separates the protected groups within each "
    "class on the validate split",
}
POLICY = "Flags were chosen automatically: {rules} was flagged spurious, without looking at evaluation data."


class Flag(BaseModel):
    """One verdict on one feature."""

    model_config = ConfigDict(extra="forbid")

    site: str
    feature: int = Field(ge=0)
    state: FlagState = "spurious"
    rationale: str = ""
    reviewer: str = "unknown"
    source: FlagSource = "person"

    @property
    def id(self) -> str:
        return f"{self.site}/{self.feature}"


class FlagSet(BaseModel):
    """The flags an edit applies, and how they were chosen."""

    model_config = ConfigDict(extra="forbid")

    flags: list[Flag]
    policy: str = "Flags were chosen by a person."

    @model_validator(mode="after")
    def _no_conflicts(self) -> FlagSet:
        states: dict[str, set[str]] = {}
        for flag in self.flags:
            states.setdefault(flag.id, set()).add(flag.state)
        for feature_id, seen in states.items():
            if len(seen) > 1:
                raise ValueError(CONFLICTING_FLAGS.format(id=feature_id, states=sorted(seen)))
        return self

    def spurious(self) -> dict[str, list[int]]:
        """{site: sorted feature indices} of the features flagged spurious, sites in sorted order whatever
        the order of the flags (so an edit is the same whether its flags came from the CLI or the API);
        refuses an empty set."""
        out: dict[str, set[int]] = {}
        for flag in self.flags:
            if flag.state == "spurious":
                out.setdefault(flag.site, set()).add(flag.feature)
        if not out:
            raise ValueError(NO_SPURIOUS)
        return {site: sorted(out[site]) for site in sorted(out)}


def read_flags_file(path: str | Path) -> FlagSet:
    """A FlagSet from a YAML or JSON file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(FLAGS_FILE_NOT_FOUND.format(path=path))
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return FlagSet.model_validate(data)
    except (json.JSONDecodeError, yaml.YAMLError, ValidationError) as err:
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()) \
            if isinstance(err, ValidationError) else str(err)
        raise ValueError(FLAGS_FILE_INVALID.format(path=path, problem=problem)) from err


def flags_from_suggestions(
    suggestions: Iterable[Suggestion], *, kind: FlagSource | Sequence[FlagSource], lexicon: str = "gendered"
) -> FlagSet:
    """Flag spurious every feature suggested by the rule `kind` (or by any of several rules: a feature that
    both suggest is flagged once per rule, with each rule's rationale), as `--flags auto...` does."""
    kinds = [kind] if isinstance(kind, str) else list(dict.fromkeys(kind))
    if not kinds:
        raise ValueError(NO_KINDS)
    flags = [
        Flag(site=s.site, feature=s.feature, state="spurious", rationale=s.reason, reviewer="auto",
             source=s.kind)
        for s in suggestions if s.kind in kinds
    ]
    if not flags:
        raise ValueError(NO_SUGGESTIONS.format(kind=" or ".join(kinds)))
    used = [k for k in kinds if any(f.source == k for f in flags)]  # a rule with no suggestion flagged nothing
    policy = POLICY.format(rules=", and ".join(POLICY_BY_SOURCE[k].format(lexicon=lexicon) for k in used))
    return FlagSet(flags=flags, policy=policy)
