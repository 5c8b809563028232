"""The sync state repository on SQLite and PostgreSQL: jobs, confirmations, deduplicated
device records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.store import device_records as sync_store
from gateway.store.database import Database

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_jobs_are_served_revocations_first_and_finished_only_at_their_revision(
    db: Database,
) -> None:
    with db.session() as s:
        sync_store.put_job(s, "key", "100000001", "r1", sync_store.UPDATE, T0)
        sync_store.put_job(s, "controller", "c1", "x1", sync_store.UPDATE, T0)
        sync_store.put_job(s, "key", "100000002", "r2", sync_store.REVOCATION,
                           T0 + timedelta(seconds=5))
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
    events = [sync_store.StoredControllerEvent("c1", 1, seq, "granted", "4000001", 1, T0)
              for seq in (1, 2, 3)]
    audit = [sync_store.StoredKeyAudit("100000001", "cylinder", "200201", "100000002", seq, T0,
                                       "granted", "", 0) for seq in (7, 8)]
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
