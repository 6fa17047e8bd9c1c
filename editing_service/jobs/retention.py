"""Removing artifacts nobody needs any more: those of failed or cancelled discoveries and edits once
their retention has passed, and folders left behind by a deletion that a crash interrupted."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta

from editing_service.store import Database, expired_artifacts, leftover_folders, mark_artifacts_removed

logger = logging.getLogger(__name__)


def sweep_artifacts(db: Database, *, retention_hours: float, now: datetime | None = None) -> int:
    """Remove expired and leftover folders; returns how many folders were removed."""
    cutoff = (now or datetime.now(UTC)) - timedelta(hours=retention_hours)
    removed = 0
    for expired in expired_artifacts(db, finished_before=cutoff):
        if expired.folder.exists():
            shutil.rmtree(expired.folder)
            removed += 1
        mark_artifacts_removed(db, expired)
        logger.info("Removed the artifacts of failed %s %s", expired.kind, expired.id)
    for folder in leftover_folders(db):
        if folder.exists():
            shutil.rmtree(folder)
            removed += 1
            logger.info("Removed %s, left behind by a deletion", folder)
    return removed
