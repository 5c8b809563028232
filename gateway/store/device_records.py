"""Repository of the sync state: pending jobs, device status, what devices were confirmed to
hold, key audit trails, cylinder blacklist confirmations and controller events.

Every function takes the caller's session, so a confirmation, its events and its outbox
messages commit together.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    Table,
    and_,
    case,
    delete,
    event,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.store.repository import Repository, rows_among
from gateway.store.tables import (
    controller_event,
    controller_sync,
    cylinder_confirmed,
    device_status,
    key_audit,
    key_image,
    site_key_visit,
    site_report,
    site_report_floor,
    sync_job,
)
from gateway.store.txcache import transaction_cache

REVOCATION = 0
"""Job priority of a change that takes access away: served before every other."""
UPDATE = 1


@dataclass(frozen=True, slots=True)
class Job:
    target_kind: str  # "key" | "controller"
    target_id: str
    priority: int
    desired_revision: str
    queued_at: datetime
    attempts: int
    last_attempt_at: datetime | None
    last_error: str | None


def _job(row: Any) -> Job:
    return Job(
        row.target_kind,
        row.target_id,
        row.priority,
        row.desired_revision,
        row.queued_at,
        row.attempts,
        row.last_attempt_at,
        row.last_error,
    )


_JOBS = Repository(sync_job, ("target_kind", "target_id"), _job)


def put_job(
    session: Session,
    kind: str,
    target: str,
    revision: str,
    priority: int,
    at: datetime,
    *,
    deferred: bool = False,
) -> None:
    """Queue (or re-target) the job bringing ``target`` to ``revision``. A job keeps the
    most urgent priority it was ever given until it is done.

    With ``deferred`` the job is kept in the session and written with the other deferred
    job changes of the transaction in one upsert (group commit): before anything of this
    module reads or changes jobs in the session, when :func:`write_deferred_jobs` is called,
    and before the transaction commits. A transaction that rolls back discards it with the
    session. For transactions without savepoints (the core's)."""
    if deferred:
        staged = _staged_jobs(session)
        drop_first, old = staged.get((kind, target), (False, None))
        if old is not None:
            staged[(kind, target)] = (drop_first, (revision, min(priority, old[1]), old[2]))
        else:
            staged[(kind, target)] = (drop_first, (revision, priority, at))
        return
    write_deferred_jobs(session)
    _upsert_jobs(session, [(kind, target, revision, priority, at)])


_STAGED_JOBS: Final = "lockgate.device_records.jobs"

# (kind, target) -> (delete the stored job first, (revision, priority, queued_at) or None)
_Staged = dict[tuple[str, str], tuple[bool, tuple[str, int, datetime] | None]]


def _staged_jobs(session: Session) -> _Staged:
    staged: _Staged | None = session.info.get(_STAGED_JOBS)
    if staged is None:
        staged = session.info[_STAGED_JOBS] = {}
    return staged


def write_deferred_jobs(session: Session, *_: Any) -> None:
    """Write the job changes of deferred :func:`put_job` and :func:`drop_job` calls still
    kept in ``session``: one delete and one upsert for all of them."""
    staged: _Staged | None = session.info.get(_STAGED_JOBS)
    if not staged:
        return
    session.info[_STAGED_JOBS] = {}
    drops = [key for key, (drop_first, _) in staged.items() if drop_first]
    if drops:
        session.connection().execute(
            delete(sync_job).where(tuple_(sync_job.c.target_kind, sync_job.c.target_id).in_(drops))
        )
    puts = [(k, t, *job) for (k, t), (_, job) in staged.items() if job is not None]
    if puts:
        _upsert_jobs(session, puts)


# Every session writes its staged jobs before it commits (one listener for the class, not
# one set up per session in every transaction).
event.listen(Session, "before_commit", write_deferred_jobs)


def _upsert_jobs(session: Session, jobs_: Sequence[tuple[str, str, str, int, datetime]]) -> None:
    conn = session.connection()
    conn.execute(
        _upsert_job_statement(conn.dialect.name),
        [
            {
                "target_kind": kind,
                "target_id": target,
                "priority": priority,
                "desired_revision": revision,
                "queued_at": at,
                "attempts": 0,
                "last_attempt_at": None,
                "last_error": None,
            }
            for kind, target, revision, priority, at in jobs_
        ],
    )


@functools.cache
def _upsert_job_statement(dialect: str) -> Any:
    """INSERT .. ON CONFLICT DO UPDATE: a new job, or the stored one re-targeted keeping the
    more urgent priority and its queue time, attempts and last error."""
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_(sync_job)
    return stmt.on_conflict_do_update(
        index_elements=[sync_job.c.target_kind, sync_job.c.target_id],
        set_={
            "desired_revision": stmt.excluded.desired_revision,
            "priority": case(
                (stmt.excluded.priority < sync_job.c.priority, stmt.excluded.priority),
                else_=sync_job.c.priority,
            ),
        },
    )


def get_job(session: Session, kind: str, target: str) -> Job | None:
    write_deferred_jobs(session)
    return _JOBS.get(session, kind, target)


def jobs(session: Session, kind: str | None = None) -> list[Job]:
    """Pending jobs, most urgent first (revocations first, then oldest first)."""
    write_deferred_jobs(session)
    stmt = select(sync_job).order_by(
        sync_job.c.priority, sync_job.c.queued_at, sync_job.c.target_id
    )
    if kind is not None:
        stmt = stmt.where(sync_job.c.target_kind == kind)
    return [_job(r) for r in session.connection().execute(stmt).all()]


def finish_job(session: Session, kind: str, target: str, revision: str) -> bool:
    """Delete the job if it still asks for ``revision`` (a newer change keeps it)."""
    write_deferred_jobs(session)
    result = session.connection().execute(
        delete(sync_job).where(
            sync_job.c.target_kind == kind,
            sync_job.c.target_id == target,
            sync_job.c.desired_revision == revision,
        )
    )
    return bool(result.rowcount)


def drop_job(session: Session, kind: str, target: str, *, deferred: bool = False) -> None:
    """Delete the job of ``target`` whatever revision it asks for (nothing is left to do).
    ``deferred`` as for :func:`put_job`."""
    if deferred:
        _staged_jobs(session)[(kind, target)] = (True, None)
        return
    write_deferred_jobs(session)
    _JOBS.delete(session, kind, target)


def fail_job(session: Session, kind: str, target: str, error: str, at: datetime) -> None:
    write_deferred_jobs(session)
    session.connection().execute(
        update(sync_job)
        .where(sync_job.c.target_kind == kind, sync_job.c.target_id == target)
        .values(attempts=sync_job.c.attempts + 1, last_attempt_at=at, last_error=error[:500])
    )


# ------------------------------------------------------------------ device status


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    device_id: str
    role: str
    online: bool
    reason: str
    changed_at: datetime
    info: dict[str, Any]


def _device_status(r: Any) -> DeviceStatus:
    return DeviceStatus(r.device_id, r.role, r.online, r.reason, r.changed_at, r.info)


_DEVICES = Repository(device_status, "device_id", _device_status)


def set_device_status(
    session: Session,
    device_id: str,
    role: str,
    online: bool,
    reason: str,
    at: datetime,
    info: dict[str, Any] | None = None,
) -> bool:
    """Record a device's availability; returns True when it changed."""
    old = _DEVICES.row(session, device_id)
    values = {
        "role": role,
        "online": online,
        "reason": reason,
        "changed_at": at,
        "info": info if info is not None else (old.info if old else {}),
    }
    if old is None:
        session.connection().execute(insert(device_status).values(device_id=device_id, **values))
        return True
    if old.online == online and old.reason == reason and info in (None, old.info):
        return False
    session.connection().execute(
        update(device_status).where(device_status.c.device_id == device_id).values(**values)
    )
    return True


def device_statuses(session: Session) -> list[DeviceStatus]:
    return _DEVICES.all(session)


# ------------------------------------------------------------------ controllers


@dataclass(frozen=True, slots=True)
class ControllerConfirmed:
    controller_id: str
    revision: str
    checksum: int
    generation: int
    entries: int
    credentials: tuple[str, ...]
    confirmed_at: datetime
    event_generation: int
    event_sequence: int


def _controller(r: Any) -> ControllerConfirmed:
    return ControllerConfirmed(
        r.controller_id,
        r.revision,
        r.checksum,
        r.generation,
        r.entries,
        tuple(r.credentials),
        r.confirmed_at,
        r.event_generation,
        r.event_sequence,
    )


_CONTROLLERS = Repository(controller_sync, "controller_id", _controller, ordered=False)


def get_controller(session: Session, controller_id: str) -> ControllerConfirmed | None:
    """The controller's confirmed allow-list (from :func:`all_controllers`: a site has tens of
    controllers, and a transaction that needs one usually needs the others)."""
    return next((c for c in all_controllers(session) if c.controller_id == controller_id), None)


def all_controllers(session: Session) -> tuple[ControllerConfirmed, ...]:
    """Every controller's confirmed allow-list; read once per transaction (a card's state
    payload needs them, so a batch of card changes would read them once per card), read again
    after any change of them in the transaction."""
    cache = transaction_cache(session, "controllers")
    found: tuple[ControllerConfirmed, ...] | None = cache.get("all")
    if found is None:
        found = cache["all"] = tuple(_CONTROLLERS.all(session))
    return found


def _controllers_changed(session: Session) -> None:
    transaction_cache(session, "controllers").clear()


def confirm_controller(
    session: Session,
    controller_id: str,
    revision: str,
    checksum: int,
    generation: int,
    credentials: Sequence[str],
    entries: int,
    at: datetime,
) -> None:
    """Record the allow-list a controller verified: its revision, checksum, generation, the
    credential numbers on it and the number of entries."""
    old = get_controller(session, controller_id)
    _controllers_changed(session)
    values = {
        "revision": revision,
        "checksum": checksum,
        "generation": generation,
        "entries": entries,
        "credentials": sorted(set(credentials), key=int),
        "confirmed_at": at,
    }
    if old is None:
        session.connection().execute(
            insert(controller_sync).values(
                controller_id=controller_id, event_generation=generation, event_sequence=0, **values
            )
        )
    else:
        session.connection().execute(
            update(controller_sync)
            .where(controller_sync.c.controller_id == controller_id)
            .values(**values)
        )


def forget_controller(session: Session, controller_id: str, generation: int, at: datetime) -> None:
    """The controller lost its memory: nothing it held counts as confirmed any more."""
    confirm_controller(session, controller_id, "", 0, generation, (), 0, at)
    _controllers_changed(session)
    session.connection().execute(
        update(controller_sync)
        .where(controller_sync.c.controller_id == controller_id)
        .values(event_generation=generation, event_sequence=0)
    )


@dataclass(frozen=True, slots=True)
class StoredControllerEvent:
    controller_id: str
    generation: int
    sequence: int
    kind: str
    credential: str
    door: int
    at: datetime


def _insert_new(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> list[bool]:
    """Insert each row unless one with the same ``keys`` exists; say which were new."""
    conn = session.connection()
    insert_ = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert_(table).on_conflict_do_nothing(index_elements=list(keys)).returning(table.c.id)
    return [conn.execute(stmt, row).first() is not None for row in rows]


def add_controller_events(
    session: Session, events: Sequence[StoredControllerEvent], at: datetime
) -> list[StoredControllerEvent]:
    """Store events not stored before (by controller, generation, sequence); return the new
    ones, and advance the controller's event cursor."""
    rows = [
        {
            "controller_id": ev.controller_id,
            "generation": ev.generation,
            "sequence": ev.sequence,
            "kind": ev.kind,
            "credential": ev.credential,
            "door": ev.door,
            "at": ev.at,
            "received_at": at,
        }
        for ev in events
    ]
    fresh = _insert_new(
        session, controller_event, rows, ("controller_id", "generation", "sequence")
    )
    new = [ev for ev, is_new in zip(events, fresh, strict=True) if is_new]
    if events:
        last = events[-1]
        _controllers_changed(session)
        session.connection().execute(
            update(controller_sync)
            .where(controller_sync.c.controller_id == last.controller_id)
            .values(
                event_generation=last.generation, event_sequence=max(e.sequence for e in events)
            )
        )
    return new


def controller_events(
    session: Session, *, credential: str | None = None, limit: int = 1000
) -> list[StoredControllerEvent]:
    stmt = select(controller_event).order_by(controller_event.c.id.desc()).limit(limit)
    if credential is not None:
        stmt = stmt.where(controller_event.c.credential == credential)
    return [
        StoredControllerEvent(
            r.controller_id, r.generation, r.sequence, r.kind, r.credential, r.door, r.at
        )
        for r in session.connection().execute(stmt)
    ]


# ------------------------------------------------------------------ keys


@dataclass(frozen=True, slots=True)
class KeyConfirmed:
    """What a key was last confirmed to hold."""

    serial: str
    revision: str
    credential_revision: str | None
    enabled: bool
    cylinders: tuple[str, ...]
    lapses_at: datetime | None
    blacklists: dict[str, int]
    station_id: str
    confirmed_at: datetime


def _key(row: Any) -> KeyConfirmed:
    return KeyConfirmed(
        row.serial,
        row.revision,
        row.credential_revision,
        row.enabled,
        tuple(row.cylinders),
        row.lapses_at,
        dict(row.blacklists),
        row.station_id,
        row.confirmed_at,
    )


_KEYS = Repository(key_image, "serial", _key, ordered=False)


def confirm_key(session: Session, image: KeyConfirmed) -> None:
    transaction_cache(session, "key-image").pop(image.serial, None)
    values = {
        "revision": image.revision,
        "credential_revision": image.credential_revision,
        "enabled": image.enabled,
        "cylinders": list(image.cylinders),
        "lapses_at": image.lapses_at,
        "blacklists": dict(image.blacklists),
        "station_id": image.station_id,
        "confirmed_at": image.confirmed_at,
    }
    done = session.connection().execute(
        update(key_image).where(key_image.c.serial == image.serial).values(**values)
    )
    if not done.rowcount:
        session.connection().execute(insert(key_image).values(serial=image.serial, **values))


def get_key(session: Session, serial: str) -> KeyConfirmed | None:
    """What key ``serial`` was last confirmed to hold (remembered for the transaction)."""
    cache = transaction_cache(session, "key-image")
    if serial not in cache:
        cache[serial] = _KEYS.get(session, serial)
    found: KeyConfirmed | None = cache[serial]
    return found


def prefetch_keys(session: Session, serials: Iterable[str]) -> None:
    """Read what each of ``serials`` was last confirmed to hold, one statement per 500 keys,
    and remember it for the transaction as :func:`get_key` does (a key never confirmed is
    remembered as such): for a caller about to ask for many keys."""
    cache = transaction_cache(session, "key-image")
    wanted = [s for s in dict.fromkeys(serials) if s not in cache]
    if not wanted:
        return
    found = {
        row.serial: _key(row)
        for row in rows_among(session.connection(), key_image, "serial", wanted)
    }
    for serial in wanted:
        cache[serial] = found.get(serial)


def all_keys(session: Session) -> list[KeyConfirmed]:
    return _KEYS.all(session)


@dataclass(frozen=True, slots=True)
class StoredKeyAudit:
    carrier: str
    source: str
    cylinder: str
    key_serial: str
    sequence: int
    at: datetime
    outcome: str
    reason: str
    blacklist_version: int


def add_key_audit(
    session: Session, records: Iterable[StoredKeyAudit], at: datetime
) -> list[StoredKeyAudit]:
    """Store audit records not stored before; return the new ones."""
    records = list(records)
    rows = [
        {
            "carrier": r.carrier,
            "source": r.source,
            "cylinder": r.cylinder,
            "key_serial": r.key_serial,
            "sequence": r.sequence,
            "at": r.at,
            "outcome": r.outcome,
            "reason": r.reason,
            "blacklist_version": r.blacklist_version,
            "received_at": at,
        }
        for r in records
    ]
    fresh = _insert_new(session, key_audit, rows, ("source", "cylinder", "key_serial", "sequence"))
    return [r for r, is_new in zip(records, fresh, strict=True) if is_new]


def key_audit_records(
    session: Session,
    *,
    key_serial: str | None = None,
    cylinder: str | None = None,
    limit: int = 1000,
) -> list[StoredKeyAudit]:
    stmt = select(key_audit).order_by(key_audit.c.at.desc(), key_audit.c.id.desc()).limit(limit)
    if key_serial is not None:
        stmt = stmt.where(key_audit.c.key_serial == key_serial)
    if cylinder is not None:
        stmt = stmt.where(key_audit.c.cylinder == cylinder)
    return [
        StoredKeyAudit(
            r.carrier,
            r.source,
            r.cylinder,
            r.key_serial,
            r.sequence,
            r.at,
            r.outcome,
            r.reason,
            r.blacklist_version,
        )
        for r in session.connection().execute(stmt)
    ]


def _cylinder_version(r: Any) -> tuple[str, int]:
    return r.cylinder, r.blacklist_version


_CYLINDERS = Repository(cylinder_confirmed, "cylinder", _cylinder_version, ordered=False)


def confirm_cylinder_blacklist(
    session: Session, cylinder: str, version: int, via_key: str, at: datetime
) -> bool:
    """Record that ``cylinder`` applied blacklist ``version`` (only ever moves forward)."""
    row = _CYLINDERS.row(session, cylinder)
    if row is None:
        session.connection().execute(
            insert(cylinder_confirmed).values(
                cylinder=cylinder, blacklist_version=version, confirmed_at=at, via_key=via_key
            )
        )
        return True
    if version <= row.blacklist_version:
        return False
    session.connection().execute(
        update(cylinder_confirmed)
        .where(and_(cylinder_confirmed.c.cylinder == cylinder))
        .values(blacklist_version=version, confirmed_at=at, via_key=via_key)
    )
    return True


def cylinder_versions(session: Session) -> dict[str, int]:
    return dict(_CYLINDERS.all(session))


def note_site_key_visit(session: Session, site: str, serial: str, at: datetime) -> None:
    """Record that key ``serial`` visited a station of site ``site`` (the last time: ``at``)."""
    where = and_(site_key_visit.c.site == site, site_key_visit.c.serial == serial)
    if session.execute(select(site_key_visit.c.site).where(where)).first() is None:
        session.execute(insert(site_key_visit).values(site=site, serial=serial, last_at=at))
    else:
        session.execute(update(site_key_visit).where(where).values(last_at=at))


def site_key_visits(session: Session, site: str, serials: Iterable[str]) -> set[str]:
    """Which of ``serials`` visited a station of site ``site``: a stored site key visit, or
    (keys programmed before visits were stored) an image last confirmed at a station whose
    availability that site reported."""
    wanted = sorted(set(serials))
    if not wanted:
        return set()
    rows = session.execute(
        select(site_key_visit.c.serial).where(
            site_key_visit.c.site == site, site_key_visit.c.serial.in_(wanted)
        )
    )
    found = {r[0] for r in rows}
    for serial in wanted:
        if serial in found:
            continue
        key = get_key(session, serial)
        station = _DEVICES.row(session, key.station_id) if key is not None else None
        if station is not None and station.role == "station" and station.info.get("site") == site:
            found.add(serial)
    return found


def applied_reports(session: Session, site: str, store: str, seqs: Iterable[int]) -> set[int]:
    """Which of the outbox sequence numbers ``seqs`` of the agent of ``site``, queued under
    store id ``store``, were applied (recorded by :func:`note_applied_reports`, or below the
    store id's floor: :func:`raise_report_floor`)."""
    wanted = sorted(set(seqs))
    row = session.execute(
        select(site_report_floor.c.below).where(
            site_report_floor.c.site == site, site_report_floor.c.store == store
        )
    ).first()
    below = 0 if row is None else int(row[0])
    found = {q for q in wanted if q < below}
    wanted = [q for q in wanted if q >= below]
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(site_report.c.seq).where(
                site_report.c.site == site,
                site_report.c.store == store,
                site_report.c.seq.in_(wanted[start : start + 500]),
            )
        )
        found.update(int(r[0]) for r in rows)
    return found


def note_applied_reports(
    session: Session, reports: Iterable[tuple[str, str, int]], at: datetime
) -> None:
    """Record reports (site, store, seq) as applied at ``at`` (none of them recorded yet)."""
    rows = [{"site": k, "store": st, "seq": q, "applied_at": at} for k, st, q in reports]
    if rows:
        session.execute(insert(site_report), rows)


def raise_report_floor(session: Session, site: str, store: str, below: int, at: datetime) -> None:
    """Every report of ``site``'s agent queued under store id ``store`` below sequence number
    ``below`` was applied or replaced: take them all for repeats from now on (the floor only
    grows) and forget their records."""
    held = session.execute(
        select(site_report_floor.c.below).where(
            site_report_floor.c.site == site, site_report_floor.c.store == store
        )
    ).first()
    if held is None:
        session.execute(
            insert(site_report_floor).values(site=site, store=store, below=below, raised_at=at)
        )
    elif int(held[0]) < below:
        session.execute(
            update(site_report_floor)
            .where(site_report_floor.c.site == site, site_report_floor.c.store == store)
            .values(below=below, raised_at=at)
        )
    else:
        return
    session.execute(
        delete(site_report).where(
            site_report.c.site == site,
            site_report.c.store == store,
            site_report.c.seq < below,
        )
    )
