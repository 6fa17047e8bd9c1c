"""Versioned discoveries: one active per project (the database decides), a new one becomes current only
when promoted, and flags stay bound to the SAE they were made on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from editing_service.store import (
    Conflict,
    Database,
    ProjectRecord,
    claim_job,
    create_edit,
    current_discovery,
    finish_job,
    get_discovery,
    list_discoveries,
    list_features,
    list_flags,
    promote_discovery,
    recover_stale_jobs,
    set_flag,
    start_discovery,
)
from editing_service.store.discoveries import ALREADY_DISCOVERING
from editing_service.store.edits import FLAGS_TO_REVIEW
from editing_service.store.tables import DiscoveryRow, JobRow, utcnow

Rows = Callable[..., list[dict[str, Any]]]
SITES = ("blocks.0.out", "blocks.1.out")


def _circuit(feature_rows: Rows) -> list[dict[str, Any]]:
    return feature_rows(4, site=SITES[0]) + feature_rows(4, site=SITES[1])


def _discover(db: Database, project: ProjectRecord, rows: list[dict[str, Any]], digests: dict[str, str],
              **settings: Any) -> Any:
    discovery, _ = start_discovery(db, project_id=project.id, settings=settings or None, principal="ana")
    job = claim_job(db, worker_id="w1")
    assert job is not None and job.params == {"discovery_id": discovery.id}
    promoted = promote_discovery(db, discovery.id, job=job, rows=rows, sae_digests=digests)
    assert promoted is not None and promoted.current
    assert finish_job(db, job.id, worker_id="w1", status="succeeded")
    return promoted


def _flag(db: Database, project: ProjectRecord, site: str, feature: int, state: str = "spurious") -> None:
    set_flag(db, project_id=project.id, site=site, feature=feature, state=state, rationale="r", reviewer="Ana",
             principal="ana")


def test_a_second_discovery_is_refused_while_one_is_active(db: Database, project: ProjectRecord) -> None:
    first, job = start_discovery(db, project_id=project.id)
    assert (first.version, first.status, first.current) == (1, "queued", False)
    assert first.artifacts_dir == project.artifacts_dir / "discoveries" / first.id
    with pytest.raises(Conflict) as refused:
        start_discovery(db, project_id=project.id)
    assert str(refused.value) == ALREADY_DISCOVERING.format(project=project.id, job=job.id, status="queued")
    claim_job(db, worker_id="w1")
    with pytest.raises(Conflict):
        start_discovery(db, project_id=project.id)
    finish_job(db, job.id, worker_id="w1", status="cancelled")
    assert get_discovery(db, project.id, first.id).status == "cancelled"
    assert start_discovery(db, project_id=project.id)[0].version == 2


def test_the_database_itself_refuses_a_second_active_discovery(db: Database, project: ProjectRecord) -> None:
    start_discovery(db, project_id=project.id)
    with pytest.raises(IntegrityError), db.session() as session:  # no check in Python on this path
        job = JobRow(id="other", project_id=project.id, kind="discover", status="queued", params={}, created_at=utcnow())
        session.add(job)
        session.add(DiscoveryRow(id="d2", project_id=project.id, job_id="other", version=7, status="running",
                                 settings={}, artifacts_dir="x"))
        session.flush()


def test_of_concurrent_starts_exactly_one_wins(db_url: str, project: ProjectRecord) -> None:
    databases = [Database(db_url) for _ in range(8)]
    barrier, won, refused = threading.Barrier(len(databases)), [], []

    def start(database: Database) -> None:
        barrier.wait()
        try:
            won.append(start_discovery(database, project_id=project.id))
        except Conflict:
            refused.append(1)

    threads = [threading.Thread(target=start, args=(d,)) for d in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for database in databases:
        database.dispose()
    assert (len(won), len(refused)) == (1, len(databases) - 1)


def test_a_new_discovery_becomes_current_only_when_promoted(
    db: Database, project: ProjectRecord, feature_rows: Rows
) -> None:
    v1 = _discover(db, project, _circuit(feature_rows), {SITES[0]: "a0", SITES[1]: "a1"})
    _flag(db, project, SITES[0], 101)
    before = list_features(db, project.id, limit=100)
    v2, _ = start_discovery(db, project_id=project.id)
    job = claim_job(db, worker_id="w2")
    assert current_discovery(db, project.id) == v1 and list_features(db, project.id, limit=100) == before
    assert finish_job(db, job.id, worker_id="w2", status="failed", error="boom")
    assert get_discovery(db, project.id, v2.id).status == "failed"
    assert current_discovery(db, project.id) == v1 and list_features(db, project.id, limit=100) == before
    assert [d.version for d in list_discoveries(db, project.id)] == [2, 1]
    assert [d.current for d in list_discoveries(db, project.id)] == [False, True]


def test_flags_carry_over_only_where_the_sae_is_the_same(
    db: Database, project: ProjectRecord, feature_rows: Rows
) -> None:
    v1 = _discover(db, project, _circuit(feature_rows), {SITES[0]: "a0", SITES[1]: "a1"})
    _flag(db, project, SITES[0], 101)
    _flag(db, project, SITES[1], 102)
    _flag(db, project, SITES[1], 103, "task_relevant")
    v2 = _discover(db, project, _circuit(feature_rows), {SITES[0]: "a0", SITES[1]: "b1"}, sae={"d_sae": 128})
    assert (v2.version, v2.settings) == (2, {"sae": {"d_sae": 128}})
    assert v2.flags_carried == [f"{SITES[0]}/101"]
    assert v2.flags_to_review == [f"{SITES[1]}/102", f"{SITES[1]}/103"]
    flags = {f"{f.site}/{f.feature}": f for f in list_flags(db, project.id)}
    assert {k: (f.current, f.discovery_id) for k, f in flags.items()} == {
        f"{SITES[0]}/101": (True, v1.id), f"{SITES[1]}/102": (False, v1.id), f"{SITES[1]}/103": (False, v1.id)}
    assert [f.feature for f in list_flags(db, project.id, current=False)] == [102, 103]
    # The listing never shows a flag made on another SAE on the feature that now has its index.
    listed = {(f.site, f.feature): f.flag for f in list_features(db, project.id, limit=100)[0]}
    assert listed[(SITES[0], 101)].state == "spurious"
    assert listed[(SITES[1], 102)] is None and listed[(SITES[1], 103)] is None
    with pytest.raises(Conflict) as refused:
        create_edit(db, project_id=project.id, policy="current flags")
    assert str(refused.value) == FLAGS_TO_REVIEW.format(n=1, project=project.id, ids=f"{SITES[1]}/102")
    _flag(db, project, SITES[1], 102)  # reviewed on the new SAE
    edit, _ = create_edit(db, project_id=project.id, policy="current flags")
    assert edit.discovery_id == v2.id
    assert [(f["site"], f["feature"]) for f in edit.flags] == [(SITES[0], 101), (SITES[1], 102)]


def test_promotion_needs_the_attempt_that_ran_it(db: Database, project: ProjectRecord, feature_rows: Rows) -> None:
    discovery, _ = start_discovery(db, project_id=project.id)
    lost = claim_job(db, worker_id="dead")
    recover_stale_jobs(db, stale_after=0, max_attempts=3)
    again = claim_job(db, worker_id="alive")
    assert promote_discovery(db, discovery.id, job=lost, rows=_circuit(feature_rows), sae_digests={}) is None
    assert current_discovery(db, project.id) is None
    assert promote_discovery(db, discovery.id, job=again, rows=_circuit(feature_rows), sae_digests={}) is not None


def test_a_promoted_discovery_stays_current_when_its_job_is_requeued(
    db: Database, project: ProjectRecord, feature_rows: Rows
) -> None:
    discovery, job = start_discovery(db, project_id=project.id)
    claimed = claim_job(db, worker_id="dies-after-promoting")
    promote_discovery(db, discovery.id, job=claimed, rows=_circuit(feature_rows), sae_digests={SITES[0]: "a"})
    assert [j.status for j in recover_stale_jobs(db, stale_after=0, max_attempts=3)] == ["queued"]
    assert get_discovery(db, project.id, discovery.id).status == "succeeded"
    assert current_discovery(db, project.id).id == discovery.id
