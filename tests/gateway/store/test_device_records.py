"""The sync state repository on SQLite and PostgreSQL: jobs, confirmations, deduplicated
device records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from gateway.store import device_records as sync_store
from gateway.store.database import Database

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_jobs_are_served_revocations_first_and_finished_only_at_their_revision(
    db: Database,
) -> None:
    with db.session() as s:
        sync_store.put_job(s, "key", "100000001", "r1", sync_store.UPDATE, T0)
        sync_store.put_job(s, "controller", "c1", "x1", sync_store.UPDATE, T0)
        sync_store.put_job(
            s, "key", "100000002", "r2", sync_store.REVOCATION, T0 + timedelta(seconds=5)
        )
        # a later change re-targets a job; it keeps its most urgent priority
        sync_store.put_job(s, "controller", "c1", "x2", sync_store.REVOCATION, T0)
        sync_store.put_job(s, "controller", "c1", "x3", sync_store.UPDATE, T0)
    with db.session(readonly=True) as s:
        order = [(j.target_id, j.priority, j.desired_revision) for j in sync_store.jobs(s)]
    assert order == [("c1", 0, "x3"), ("100000002", 0, "r2"), ("100000001", 1, "r1")]
    with db.session() as s:
        assert not sync_store.finish_job(s, "controller", "c1", "x2")  # a newer one waits
        assert sync_store.finish_job(s, "controller", "c1", "x3")
        sync_store.fail_job(s, "key", "100000001", "KeyRemoved: pulled", T0)
        assert sync_store.get_job(s, "key", "100000001").attempts == 1  # type: ignore[union-attr]
        sync_store.drop_job(s, "key", "100000001")
    with db.session(readonly=True) as s:
        assert [j.target_id for j in sync_store.jobs(s)] == ["100000002"]


def test_device_records_are_stored_once_however_often_they_are_read(db: Database) -> None:
    events = [
        sync_store.StoredControllerEvent("c1", 1, seq, "granted", "4000001", 1, T0)
        for seq in (1, 2, 3)
    ]
    audit = [
        sync_store.StoredKeyAudit(
            "100000001", "cylinder", "200201", "100000002", seq, T0, "granted", "", 0
        )
        for seq in (7, 8)
    ]
    with db.session() as s:
        sync_store.confirm_controller(s, "c1", "rev", 0xABC, 1, ["4000001"], 1, T0)
        assert sync_store.add_controller_events(s, events[:2], T0) == events[:2]
        assert sync_store.add_key_audit(s, audit[:1], T0) == audit[:1]
    with db.session() as s:
        assert sync_store.add_controller_events(s, events, T0) == events[2:]
        assert sync_store.add_key_audit(s, audit, T0) == audit[1:]
        held = sync_store.get_controller(s, "c1")
    assert held is not None
    assert (held.event_generation, held.event_sequence) == (1, 3)
    with db.session(readonly=True) as s:
        assert len(sync_store.controller_events(s)) == 3
        assert len(sync_store.key_audit_records(s, key_serial="100000002")) == 2


def test_a_cylinder_blacklist_confirmation_only_moves_forward(db: Database) -> None:
    with db.session() as s:
        assert sync_store.confirm_cylinder_blacklist(s, "200201", 3, "100000002", T0)
        assert not sync_store.confirm_cylinder_blacklist(s, "200201", 2, "100000003", T0)
        assert sync_store.confirm_cylinder_blacklist(s, "200201", 4, "100000003", T0)
    with db.session(readonly=True) as s:
        assert sync_store.cylinder_versions(s) == {"200201": 4}


def test_device_status_reports_only_changes(db: Database) -> None:
    with db.session() as s:
        assert sync_store.set_device_status(s, "desk-1", "station", True, "connected", T0)
        assert not sync_store.set_device_status(s, "desk-1", "station", True, "connected", T0)
        assert sync_store.set_device_status(s, "desk-1", "station", False, "unplugged", T0)
    with db.session(readonly=True) as s:
        [status] = sync_store.device_statuses(s)
    assert (status.online, status.reason) == (False, "unplugged")


def _job_table(db: Database) -> list[tuple[str, str, int, str, datetime, int]]:
    with db.session(readonly=True) as s:
        return [
            (j.target_kind, j.target_id, j.priority, j.desired_revision, j.queued_at, j.attempts)
            for j in sync_store.jobs(s)
        ]


def test_deferred_job_changes_end_as_the_same_jobs_as_immediate_ones(db: Database) -> None:
    """The planner's jobs are kept in the session and written in one upsert per transaction:
    every sequence of puts and drops must leave what the same calls made one by one leave."""
    later = T0 + timedelta(seconds=9)
    ops: list[tuple[str, str, str, str, int, datetime]] = [
        ("put", "key", "1", "a1", sync_store.UPDATE, T0),
        ("put", "key", "1", "a2", sync_store.UPDATE, later),  # re-targeted, keeps queued_at
        ("put", "key", "2", "b1", sync_store.REVOCATION, T0),
        ("put", "key", "2", "b2", sync_store.UPDATE, later),  # keeps the revocation priority
        ("drop", "key", "3", "", 0, T0),  # stored before: gone
        ("drop", "key", "4", "", 0, T0),  # stored before, then queued again: a fresh job
        ("put", "key", "4", "d2", sync_store.UPDATE, later),
        ("put", "key", "5", "e1", sync_store.UPDATE, later),  # queued, then dropped
        ("drop", "key", "5", "", 0, T0),
        ("put", "controller", "c1", "x2", sync_store.UPDATE, later),  # stored as revocation
        ("put", "controller", "c2", "y2", sync_store.REVOCATION, later),  # stored as update
    ]
    results = []
    for deferred in (False, True):
        with db.session() as s:
            for kind, target in (
                ("key", "1"),
                ("key", "2"),
                ("key", "3"),
                ("key", "4"),
                ("key", "5"),
                ("controller", "c1"),
                ("controller", "c2"),
            ):
                sync_store.drop_job(s, kind, target)
            sync_store.put_job(s, "key", "3", "c0", sync_store.UPDATE, T0)
            sync_store.put_job(s, "key", "4", "d0", sync_store.REVOCATION, T0)
            sync_store.put_job(s, "controller", "c1", "x0", sync_store.REVOCATION, T0)
            sync_store.put_job(s, "controller", "c2", "y0", sync_store.UPDATE, T0)
            sync_store.fail_job(s, "controller", "c2", "timeout", T0)
        with db.session() as s:
            for op, kind, target, revision, priority, at in ops:
                if op == "put":
                    sync_store.put_job(s, kind, target, revision, priority, at, deferred=deferred)
                else:
                    sync_store.drop_job(s, kind, target, deferred=deferred)
        results.append(_job_table(db))
    assert results[1] == results[0]
    assert results[0] == [
        ("key", "2", 0, "b2", T0, 0),
        ("controller", "c1", 0, "x2", T0, 0),
        ("controller", "c2", 0, "y2", T0, 1),
        ("key", "1", 1, "a2", T0, 0),
        ("key", "4", 1, "d2", later, 0),
    ]


def test_deferred_jobs_are_read_back_and_discarded_with_a_rollback(db: Database) -> None:
    with db.session() as s:
        sync_store.put_job(s, "key", "7", "r1", sync_store.UPDATE, T0, deferred=True)
        # a read in the same transaction sees it (written before the read)
        assert sync_store.get_job(s, "key", "7") is not None
        sync_store.put_job(s, "key", "8", "r1", sync_store.UPDATE, T0, deferred=True)
        assert sync_store.finish_job(s, "key", "8", "r1")
    assert [j[1] for j in _job_table(db)] == ["7"]
    try:
        with db.session() as s:
            sync_store.put_job(s, "key", "9", "r1", sync_store.UPDATE, T0, deferred=True)
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert [j[1] for j in _job_table(db)] == ["7"]


def test_a_site_has_the_keys_that_visited_it_or_were_programmed_at_its_stations(
    db: Database,
) -> None:
    with db.session() as s:
        sync_store.note_site_key_visit(s, "north", "100000001", T0)
        sync_store.note_site_key_visit(s, "north", "100000001", T0 + timedelta(minutes=1))
        # a key programmed at north's station before visits were stored
        sync_store.set_device_status(
            s, "wall-n", "station", True, "connected", T0, {"site": "north"}
        )
        sync_store.confirm_key(
            s,
            sync_store.KeyConfirmed("100000002", "r", None, True, (), None, {}, "wall-n", T0),
        )
    with db.session(readonly=True) as s:
        asked = ["100000001", "100000002", "100000003"]
        assert sync_store.site_key_visits(s, "north", asked) == {"100000001", "100000002"}
        assert sync_store.site_key_visits(s, "south", asked) == set()
        assert sync_store.site_key_visits(s, "north", []) == set()


def test_many_keys_are_read_ahead_in_few_statements_and_remembered(db: Database) -> None:
    with db.session() as s:
        for i in range(0, 1100, 3):
            sync_store.confirm_key(
                s,
                sync_store.KeyConfirmed(
                    f"k{i}", f"r{i}", f"c{i}", True, ("200201",), None, {"200201": i}, "desk", T0
                ),
            )
    statements: list[str] = []

    def count(_c: object, _cur: object, statement: str, *_: object) -> None:
        if statement.startswith("SELECT key_image."):
            statements.append(statement)

    wanted = [f"k{i}" for i in range(1100)] + ["k0", "never"]
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.session() as s:
            sync_store.prefetch_keys(s, wanted)
            assert len(statements) == 3  # 1101 distinct keys, 500 a statement
            found = {k: sync_store.get_key(s, k) for k in wanted}
            sync_store.prefetch_keys(s, wanted)
            assert len(statements) == 3  # all remembered for the transaction
            sync_store.confirm_key(
                s, sync_store.KeyConfirmed("k1", "new", None, False, (), None, {}, "desk", T0)
            )
            after = sync_store.get_key(s, "k1")  # a confirmation in the transaction is seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert {k for k, v in found.items() if v is not None} == {f"k{i}" for i in range(0, 1100, 3)}
    k3 = found["k3"]
    assert k3 is not None and (k3.revision, k3.cylinders, k3.blacklists) == (
        "r3",
        ("200201",),
        {"200201": 3},
    )
    assert after is not None and after.revision == "new"
