"""The browser tests' world: the tiny API world, with markup-shaped payloads where a hostile dataset,
model or user would put them (a dataset text and the tokenizer's vocabulary, a feature label, a
rationale, a reviewer name, a project name), and a circuit.json for the discovered project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from api_world import make_world
from factories import WORDS, make_model_folder, make_tokenizer
from http_server import TOKENS

# Each sets window.__xss if it ever runs; no spaces, so a whitespace tokenizer keeps each one whole.
SCRIPT = "<script>window.__xss='script'</script>"
IMG = "\"><img/src=x/onerror=window.__xss='img'>"
PAYLOADS = (SCRIPT, IMG)
PROJECT_NAME = "bios " + IMG
VIEWER, VIEWER_TOKEN = "vic", "token-vic"  # a viewer member of the discovered project


@dataclass
class Discovered:
    """The session's discovered project: its id, its current discovery's folder and the project's own
    folder (where its edits are written)."""

    id: str
    folder: Path
    project_folder: Path


def sign_in(tab: object, token: str = TOKENS["ana"], reviewer: str = "Ana") -> None:
    """Sign in on the workbench's sign-in page and wait for the projects page."""
    tab.fill("#token", token)
    tab.fill("#reviewer", reviewer)
    tab.click("button[type=submit]")
    tab.wait_for_selector("main h1:text-is('Projects')")


def make_workbench_world(root: Path) -> Path:
    """models/bert (a tokenizer whose vocabulary holds the payloads as tokens) and data/bios.csv (a
    payload in every third text)."""
    make_world(root)
    tokenizer = make_tokenizer([*WORDS, *PAYLOADS], split_punctuation=False)
    make_model_folder(root / "models", "bert", tokenizer=tokenizer)  # replaces the world's bert
    table = pd.read_csv(root / "data" / "bios.csv")
    table.loc[::3, "text"] = table.loc[::3, "text"] + " " + [PAYLOADS[i % 2] for i in range(len(table.loc[::3]))]
    table.to_csv(root / "data" / "bios.csv", index=False)
    return root
