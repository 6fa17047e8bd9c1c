"""Circuit features: replace, list with filters, sorts and pages (with their flags), get, count."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from editing_service.store import (
    Database,
    Invalid,
    NotFound,
    ProjectRecord,
    count_features,
    get_feature,
    list_features,
    replace_features,
    set_flag,
)
from editing_service.store.errors import INVALID_CHOICE
from editing_service.store.features import FEATURE_NOT_FOUND, FEATURE_ROW_DUPLICATE, FEATURE_ROW_INCOMPLETE
from editing_service.store.projects import PROJECT_NOT_FOUND
from editing_service.store.tables import FeatureRow

Rows = Callable[..., list[dict[str, Any]]]


def flag(db: Database, project: ProjectRecord, feature: int, state: str, site: str = "blocks.0.out") -> None:
    set_flag(
        db,
        project_id=project.id,
        site=site,
        feature=feature,
        state=state,
        rationale="r",
        reviewer="ana",
        principal="token-ana",
    )


def test_features_round_trip_with_their_cards(
    db: Database, project: ProjectRecord, with_features: Rows
) -> None:
    rows = with_features()
    assert count_features(db, project.id) == 12
    first = get_feature(db, project.id, "blocks.0.out", 101)
    assert (first.score, first.rank, first.label, first.suggestions) == (-0.1, 1, "feature 1", [])
    assert first.card == {"top_tokens": ["she", "her"], "rank": 1}
    assert first.flag is None
    assert get_feature(db, project.id, "blocks.0.out", 102).card is None
    with db.session(readonly=True) as session:  # stored as SQL NULL, not as JSON null
        assert session.scalar(select(func.count()).where(FeatureRow.card.is_(None))) == 6
    items, total = list_features(db, project.id, limit=100)
    assert total == 12
    assert [(f.site, f.feature, f.score, f.rank, f.suggestions) for f in items] == [
        (r["site"], r["feature"], r["score"], r["rank"], r["suggestions"]) for r in rows
    ]


def test_replacing_features_drops_the_old_ones_and_keeps_flags(
    db: Database, project: ProjectRecord, with_features: Rows, feature_rows: Rows
) -> None:
    with_features()
    flag(db, project, 103, "spurious")
    assert replace_features(db, project.id, feature_rows(4, site="blocks.1.out")) == 4
    assert count_features(db, project.id) == count_features(db, project.id, site="blocks.1.out") == 4
    with_features()
    assert get_feature(db, project.id, "blocks.0.out", 103).flag.state == "spurious"  # type: ignore[union-attr]


def test_features_are_filtered_by_site_flag_and_suggestion(
    db: Database, project: ProjectRecord, with_features: Rows, feature_rows: Rows
) -> None:
    with_features(feature_rows(12) + feature_rows(3, site="blocks.1.out"))
    flag(db, project, 103, "spurious")
    flag(db, project, 104, "task_relevant")
    flag(db, project, 101, "spurious", site="blocks.1.out")

    def ids(**filters: Any) -> tuple[list[tuple[str, int]], int]:
        items, total = list_features(db, project.id, limit=100, **filters)
        return [(f.site, f.feature) for f in items], total

    b0, b1 = "blocks.0.out", "blocks.1.out"
    assert ids(site=b1) == ([(b1, 101), (b1, 102), (b1, 103)], 3)
    assert ids(flag="spurious") == ([(b1, 101), (b0, 103)], 2)  # by rank
    assert ids(flag="task_relevant") == ([(b0, 104)], 1)
    assert ids(flag="none", site=b1) == ([(b1, 102), (b1, 103)], 2)
    assert ids(flag="none")[1] == 15 - 3
    assert ids(suggestion="lexicon", site=b0) == ([(b0, 103), (b0, 106), (b0, 109), (b0, 112)], 4)
    assert ids(suggestion="protected_attribute") == ([(b0, 105), (b0, 110)], 2)
    assert ids(suggestion="lexicon", flag="none", site=b0)[1] == 3
    [spurious] = list_features(db, project.id, site=b0, flag="spurious")[0]
    assert spurious.flag is not None and (spurious.flag.state, spurious.flag.reviewer) == ("spurious", "ana")


def test_features_sort_by_rank_score_and_absolute_score(
    db: Database, project: ProjectRecord, with_features: Rows
) -> None:
    with_features()  # score of rank r: (-1)**r * r / 10

    def ranks(sort: str) -> list[int]:
        return [f.rank for f in list_features(db, project.id, sort=sort, limit=100)[0]]

    assert ranks("rank") == list(range(1, 13))
    assert ranks("-score") == [12, 10, 8, 6, 4, 2, 1, 3, 5, 7, 9, 11]
    assert ranks("score") == [11, 9, 7, 5, 3, 1, 2, 4, 6, 8, 10, 12]
    assert ranks("-abs_score") == list(range(12, 0, -1))
    assert ranks("abs_score") == list(range(1, 13))


def test_features_are_paged_with_the_total(db: Database, project: ProjectRecord, with_features: Rows) -> None:
    with_features()
    pages = [
        list_features(db, project.id, sort="-abs_score", limit=5, offset=offset) for offset in (0, 5, 10)
    ]
    assert [total for _, total in pages] == [12, 12, 12]
    assert [[f.rank for f in items] for items, _ in pages] == [[12, 11, 10, 9, 8], [7, 6, 5, 4, 3], [2, 1]]
    assert list_features(db, project.id, offset=12) == ([], 12)


def test_feature_errors_say_what_is_wrong(db: Database, project: ProjectRecord, with_features: Rows) -> None:
    with_features()
    with pytest.raises(NotFound) as raised:
        get_feature(db, project.id, "blocks.0.out", 999)
    assert str(raised.value) == FEATURE_NOT_FOUND.format(site="blocks.0.out", feature=999, project=project.id)
    assert str(raised.value) == f"Feature blocks.0.out/999 is not in the circuit of project {project.id!r}."
    with pytest.raises(NotFound, match=re.escape(PROJECT_NOT_FOUND.format(id="nope"))):
        list_features(db, "nope")
    with pytest.raises(NotFound, match=re.escape(PROJECT_NOT_FOUND.format(id="nope"))):
        replace_features(db, "nope", [])
    with pytest.raises(Invalid) as raised:
        list_features(db, project.id, sort="abs")
    assert str(raised.value) == INVALID_CHOICE.format(
        what="sort", allowed="'rank', 'score', '-score', 'abs_score', '-abs_score'", value="abs"
    )
    with pytest.raises(Invalid) as raised:
        list_features(db, project.id, flag="flagged")
    assert str(raised.value) == "flag must be one of 'spurious', 'task_relevant', 'none', not 'flagged'."
    with pytest.raises(Invalid, match="suggestion must be one of 'lexicon', 'protected_attribute', not 'x%'"):
        list_features(db, project.id, suggestion="x%")
    with pytest.raises(Invalid) as raised:
        replace_features(db, project.id, [{"site": "s", "feature": 1, "score": 0.5}])
    assert str(raised.value) == FEATURE_ROW_INCOMPLETE.format(index=0, field="rank")
    duplicate = {"site": "s", "feature": 1, "score": 0.5, "rank": 1}
    with pytest.raises(Invalid) as raised:
        replace_features(db, project.id, [duplicate, duplicate])
    assert str(raised.value) == FEATURE_ROW_DUPLICATE.format(site="s", feature=1)
    assert count_features(db, project.id) == 12
