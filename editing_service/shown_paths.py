"""How server paths are shown to the people using the service: relative to the service home.

Every text that leaves the service (a 4xx message, a project, a failed job's error) shows paths this
way, so that no answer exposes where the service lives on its machine. The REST layer and the job
worker both use it; it knows nothing of either.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_ABSOLUTE = re.compile(r"(?<![\w.:/])/(?!v1/)[^\s'\"`,;()\[\]{}<>]+")


def shown(path: str | Path, home: Path) -> str:
    """A server path as an answer shows it: relative to the service home."""
    return Path(os.path.relpath(Path(path), home)).as_posix()


def redact(text: str, home: Path) -> str:
    """`text` with every absolute path in it replaced by its `shown` form."""
    return _ABSOLUTE.sub(lambda m: shown(m.group(0), home), text)
