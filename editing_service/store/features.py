"""Circuit features of a project (score, rank, label, suggestions, card), listed with their current flag."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, cast, delete, func, insert, select
from sqlalchemy.orm import Session

from editing_service.store.database import Database
from editing_service.store.errors import Invalid, NotFound, check_choice
from editing_service.store.paging import check_paging
from editing_service.store.projects import require_project
from editing_service.store.records import FLAG_STATES, SUGGESTION_KINDS, FeatureRecord
from editing_service.store.tables import FeatureRow, FlagRow

FEATURE_NOT_FOUND = "Feature {site}/{feature} is not in the circuit of project {project!r}."
FEATURE_ROW_INCOMPLETE = "Feature row {index} lacks {field!r}; every row needs site, feature, score and rank."
FEATURE_ROW_DUPLICATE = "Feature {site}/{feature} appears more than once in the rows."
SORTS = ("rank", "score", "-score", "abs_score", "-abs_score")
FLAG_FILTERS = (*FLAG_STATES, "none")

_REQUIRED = ("site", "feature", "score", "rank")
# A flag applies to a feature only if it was made on the same SAE (see discoveries.py).
_FLAG_OF_FEATURE = and_(
    FlagRow.project_id == FeatureRow.project_id,
    FlagRow.site == FeatureRow.site,
    FlagRow.feature == FeatureRow.feature,
    FlagRow.sae_digest == FeatureRow.sae_digest,
)
_ORDER = {
    "rank": (FeatureRow.rank,),
    "score": (FeatureRow.score,),
    "-score": (FeatureRow.score.desc(),),
    "abs_score": (func.abs(FeatureRow.score),),
    "-abs_score": (func.abs(FeatureRow.score).desc(),),
}


def replace_features(db: Database, project_id: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Replace the project's features by `rows` (site, feature, score, rank; label, suggestions, card,
    sae_digest optional).

    Flags are kept, also for features that are no longer in the circuit. Returns the number of features.
    A discovery replaces them with `promote_discovery` instead.
    """
    values = feature_values(project_id, rows)
    with db.session() as session:
        require_project(session, project_id)
        session.execute(delete(FeatureRow).where(FeatureRow.project_id == project_id))
        if values:
            session.execute(insert(FeatureRow), values)
    return len(values)


def list_features(
    db: Database,
    project_id: str,
    *,
    site: str | None = None,
    flag: str | None = None,
    suggestion: str | None = None,
    sort: str = "rank",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[FeatureRecord], int]:
    """One page of the project's features with their flags, and how many match.

    `flag`: 'spurious', 'task_relevant' or 'none' (not flagged); `suggestion`: a suggestion kind;
    `sort`: 'rank' (default), 'score', '-score', 'abs_score' or '-abs_score' ('-' is descending).
    """
    check_choice(sort, SORTS, "sort")
    check_paging(limit, offset)
    where: list[ColumnElement[bool]] = [FeatureRow.project_id == project_id]
    if site is not None:
        where.append(FeatureRow.site == site)
    if flag is not None:
        check_choice(flag, FLAG_FILTERS, "flag")
        where.append(FlagRow.state.is_(None) if flag == "none" else FlagRow.state == flag)
    if suggestion is not None:
        check_choice(suggestion, SUGGESTION_KINDS, "suggestion")
        where.append(has_suggestion(suggestion))
    with db.session(readonly=True) as session:
        require_project(session, project_id)
        total = session.scalar(_with_flags(select(func.count())).where(*where)) or 0
        order = (*_ORDER[sort], FeatureRow.rank, FeatureRow.site, FeatureRow.feature)
        rows = session.execute(
            _with_flags(select(FeatureRow, FlagRow))
            .where(*where)
            .order_by(*order)
            .limit(limit)
            .offset(offset)
        )
        return [feature.record(flag_row) for feature, flag_row in rows], total


def get_feature(db: Database, project_id: str, site: str, feature: int) -> FeatureRecord:
    with db.session(readonly=True) as session:
        require_project(session, project_id)
        row = session.execute(
            _with_flags(select(FeatureRow, FlagRow)).where(
                FeatureRow.project_id == project_id, FeatureRow.site == site, FeatureRow.feature == feature
            )
        ).one_or_none()
        if row is None:
            raise NotFound(FEATURE_NOT_FOUND.format(site=site, feature=feature, project=project_id))
        return row[0].record(row[1])


def count_features(db: Database, project_id: str, *, site: str | None = None) -> int:
    query = select(func.count()).select_from(FeatureRow).where(FeatureRow.project_id == project_id)
    if site is not None:
        query = query.where(FeatureRow.site == site)
    with db.session(readonly=True) as session:
        return session.scalar(query) or 0


def has_suggestion(kind: str) -> ColumnElement[bool]:
    """SQL: the feature's suggestions include `kind` (a text match on the JSON list, same on every backend)."""
    quoted = json.dumps(kind).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return cast(FeatureRow.suggestions, String).like(f"%{quoted}%", escape="\\")


def require_feature(session: Session, project_id: str, site: str, feature: int, *, lock: bool) -> FeatureRow:
    """The feature's row, or NotFound; `lock` holds it (SELECT ... FOR UPDATE) until the transaction ends."""
    query = select(FeatureRow).where(
        FeatureRow.project_id == project_id, FeatureRow.site == site, FeatureRow.feature == feature
    )
    row = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise NotFound(FEATURE_NOT_FOUND.format(site=site, feature=feature, project=project_id))
    return row


def _with_flags(query: Select[Any]) -> Select[Any]:
    return query.select_from(FeatureRow).outerjoin(FlagRow, _FLAG_OF_FEATURE)


def feature_values(project_id: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The features table's rows for `rows`, checked (Invalid names an incomplete or repeated row)."""
    values, seen = [], set()
    for index, row in enumerate(rows):
        for field in _REQUIRED:
            if row.get(field) is None:
                raise Invalid(FEATURE_ROW_INCOMPLETE.format(index=index, field=field))
        key = (str(row["site"]), int(row["feature"]))
        if key in seen:
            raise Invalid(FEATURE_ROW_DUPLICATE.format(site=key[0], feature=key[1]))
        seen.add(key)
        values.append(
            {
                "project_id": project_id,
                "site": key[0],
                "feature": key[1],
                "score": float(row["score"]),
                "rank": int(row["rank"]),
                "label": row.get("label"),
                "suggestions": list(row.get("suggestions") or []),
                "card": row.get("card"),
                "sae_digest": str(row.get("sae_digest") or ""),
            }
        )
    return values
