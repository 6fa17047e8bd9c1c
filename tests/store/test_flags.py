"""Flags and their audit log: set, clear, concurrent reviewers, suggestions applied, a restart survived."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

from editing_service.store import (
    AuditRecord,
    Database,
    Invalid,
    NotFound,
    ProjectRecord,
    apply_suggestions,
    audit_log,
    clear_flag,
    get_feature,
    list_flags,
    set_flag,
)
from editing_service.store.errors import INVALID_CHOICE
from editing_service.store.features import FEATURE_NOT_FOUND
from editing_service.store.flags import NO_FLAG_TO_CLEAR, SUGGESTED_RATIONALE
from editing_service.store.projects import PROJECT_NOT_FOUND

Rows = Callable[..., list[dict[str, Any]]]
SITE = "blocks.0.out"


def flag(db: Database, project: ProjectRecord, feature: int, state: str, **fields: Any) -> Any:
    values = {"rationale": "fires on she/her", "reviewer": "ana", "principal": "token-ana", **fields}
    return set_flag(db, project_id=project.id, site=SITE, feature=feature, state=state, **values)


def test_a_flag_is_set_replaced_and_audited(
    db: Database, project: ProjectRecord, with_features: Rows
) -> None:
    with_features()
    first = flag(db, project, 103, "spurious")
    assert (first.state, first.rationale, first.reviewer, first.principal, first.source) == (
        "spurious",
        "fires on she/her",
        "ana",
        "token-ana",
        "person",
    )
    second = flag(db, project, 103, "task_relevant", rationale="surgical vocabulary", reviewer="ben")
    assert list_flags(db, project.id) == [second]
    assert get_feature(db, project.id, SITE, 103).flag == second
    log = audit_log(db, project.id)
    assert [(e.action, e.state, e.previous_state, e.reviewer) for e in log] == [
        ("set", "spurious", None, "ana"),
        ("set", "task_relevant", "spurious", "ben"),
    ]
    assert log[1].rationale == "surgical vocabulary" and log[1].principal == "token-ana"
    assert log[0].id < log[1].id and log[0].at <= log[1].at


def test_a_flag_is_cleared_and_the_clear_audited(
    db: Database, project: ProjectRecord, with_features: Rows
) -> None:
    with_features()
    flag(db, project, 103, "spurious")
    flag(db, project, 104, "spurious")
    entry = clear_flag(
        db,
        project_id=project.id,
        site=SITE,
        feature=103,
        reviewer="ben",
        principal="token-ben",
        rationale="oops",
    )
    assert (entry.action, entry.state, entry.previous_state, entry.reviewer, entry.rationale) == (
        "clear",
        None,
        "spurious",
        "ben",
        "oops",
    )
    assert [f.feature for f in list_flags(db, project.id)] == [104]
    assert audit_log(db, project.id)[-1] == entry
    assert audit_log(db, project.id, feature=103) == [audit_log(db, project.id)[0], entry]
    assert audit_log(db, project.id, limit=1, offset=1) == [audit_log(db, project.id)[1]]
    with pytest.raises(NotFound) as raised:
        clear_flag(db, project_id=project.id, site=SITE, feature=103, reviewer="ben", principal="token-ben")
    assert str(raised.value) == NO_FLAG_TO_CLEAR.format(site=SITE, feature=103, project=project.id)
    assert str(raised.value) == f"Feature {SITE}/103 of project {project.id!r} has no flag to clear."


def test_a_flag_can_be_cleared_after_its_feature_left_the_circuit(
    db: Database, project: ProjectRecord, with_features: Rows, feature_rows: Rows
) -> None:
    with_features()
    flag(db, project, 112, "spurious")
    with_features(feature_rows(3))
    assert [f.feature for f in list_flags(db, project.id)] == [112]
    clear_flag(db, project_id=project.id, site=SITE, feature=112, reviewer="ana", principal="token-ana")
    assert list_flags(db, project.id) == []


def assert_consistent(db: Database, project: ProjectRecord, features: set[int], calls: int) -> None:
    """Exactly `calls` audit entries; per feature each entry's previous_state is the state before it,
    and the current flag is the last entry's."""
    log = audit_log(db, project.id)
    assert len(log) == calls
    current = {f.feature: f for f in list_flags(db, project.id)}
    assert set(current) == features
    for feature in features:
        entries = [entry for entry in log if entry.feature == feature]
        assert [e.previous_state for e in entries] == [None] + [e.state for e in entries[:-1]]
        last: AuditRecord = entries[-1]
        assert (current[feature].state, current[feature].rationale, current[feature].reviewer) == (
            last.state,
            last.rationale,
            last.reviewer,
        )


@pytest.mark.parametrize("same_feature", [True, False], ids=["same-feature", "different-features"])
def test_two_reviewers_flagging_at_once_leave_a_consistent_flag_and_log(
    db: Database, db_url: str, project: ProjectRecord, with_features: Rows, same_feature: bool
) -> None:
    with_features()
    targets = {"ana": 103, "ben": 103 if same_feature else 104}
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def review(reviewer: str, offset: int) -> None:
        own = Database(db_url)
        try:
            start.wait()
            for call in range(50):
                set_flag(
                    own,
                    project_id=project.id,
                    site=SITE,
                    feature=targets[reviewer],
                    state=("spurious", "task_relevant")[(call + offset) % 2],
                    rationale=f"{reviewer} {call}",
                    reviewer=reviewer,
                    principal=f"token-{reviewer}",
                )
        except BaseException as error:  # noqa: BLE001 (reported by the main thread)
            errors.append(error)
        finally:
            own.dispose()

    threads = [threading.Thread(target=review, args=args) for args in (("ana", 0), ("ben", 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert_consistent(db, project, set(targets.values()), calls=100)
    for reviewer in targets:
        mine = [e.rationale for e in audit_log(db, project.id) if e.reviewer == reviewer]
        assert mine == [f"{reviewer} {call}" for call in range(50)]


def test_suggestions_are_applied_except_over_a_persons_verdict(
    db: Database, project: ProjectRecord, with_features: Rows
) -> None:
    with_features()  # lexicon suggests 103, 106, 109, 112
    flag(db, project, 106, "task_relevant")
    flag(db, project, 109, "spurious")
    applied = apply_suggestions(
        db, project_id=project.id, kind="lexicon", reviewer="auto", principal="token-ops"
    )
    assert [(f.feature, f.state, f.source) for f in applied] == [
        (103, "spurious", "lexicon"),
        (112, "spurious", "lexicon"),
    ]
    assert {f.rationale for f in applied} == {SUGGESTED_RATIONALE.format(kind="lexicon")}
    assert {f.feature: f.state for f in list_flags(db, project.id)} == {
        103: "spurious",
        106: "task_relevant",
        109: "spurious",
        112: "spurious",
    }
    assert list_flags(db, project.id)[2].rationale == "fires on she/her"
    automatic = [e for e in audit_log(db, project.id) if e.source == "lexicon"]
    assert [(e.feature, e.previous_state, e.principal) for e in automatic] == [
        (103, None, "token-ops"),
        (112, None, "token-ops"),
    ]
    assert apply_suggestions(db, project_id=project.id, kind="lexicon", reviewer="auto", principal="p") == []
    assert len(audit_log(db, project.id)) == 4
    by_attribute = apply_suggestions(
        db,
        project_id=project.id,
        kind="protected_attribute",
        reviewer="auto",
        principal="p",
        rationale="AUROC 0.8",
    )
    assert [(f.feature, f.rationale, f.source) for f in by_attribute] == [
        (105, "AUROC 0.8", "protected_attribute"),
        (110, "AUROC 0.8", "protected_attribute"),
    ]


def test_flags_and_their_log_survive_a_restart(
    db_url: str, project: ProjectRecord, with_features: Rows
) -> None:
    with_features()
    first = Database(db_url)
    flag(first, project, 103, "spurious")
    flag(first, project, 104, "task_relevant")
    before = (list_flags(first, project.id), audit_log(first, project.id))
    first.dispose()
    reopened = Database(db_url)
    reopened.create_all()
    try:
        assert (list_flags(reopened, project.id), audit_log(reopened, project.id)) == before
    finally:
        reopened.dispose()


def test_flag_errors_say_what_is_wrong(db: Database, project: ProjectRecord, with_features: Rows) -> None:
    with_features()
    with pytest.raises(NotFound) as raised:
        flag(db, project, 999, "spurious")
    assert str(raised.value) == FEATURE_NOT_FOUND.format(site=SITE, feature=999, project=project.id)
    with pytest.raises(NotFound, match=re.escape(PROJECT_NOT_FOUND.format(id="nope"))):
        set_flag(
            db,
            project_id="nope",
            site=SITE,
            feature=103,
            state="spurious",
            rationale="",
            reviewer="a",
            principal="p",
        )
    with pytest.raises(Invalid) as raised:
        flag(db, project, 103, "biased")
    assert str(raised.value) == INVALID_CHOICE.format(
        what="state", allowed="'spurious', 'task_relevant'", value="biased"
    )
    with pytest.raises(
        Invalid, match="source must be one of 'person', 'lexicon', 'protected_attribute', not 'x'"
    ):
        flag(db, project, 103, "spurious", source="x")
    with pytest.raises(Invalid, match="kind must be one of 'lexicon', 'protected_attribute', not 'person'"):
        apply_suggestions(db, project_id=project.id, kind="person", reviewer="a", principal="p")
    with pytest.raises(NotFound, match=re.escape(PROJECT_NOT_FOUND.format(id="nope"))):
        audit_log(db, "nope")
    assert audit_log(db, project.id) == [] and list_flags(db, project.id) == []
