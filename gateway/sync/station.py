"""The worker of one key programming station: every key inserted is read, its audit trail
collected, and (at once on a wall-mounted station, on the operator's word at a desk) brought
to the image its desired state asks for, verified, and recorded as confirmed.

A visit, in order:

1. read the key's image: what it physically holds is recorded as its exposure (so that
   blacklists cover it if it must not open something it still opens);
2. read its audit trail (its own records and those cylinders handed to it), store the new
   records, record the blacklist versions cylinders confirmed applying, then clear the trail
   on the key — only after the records are stored;
3. plan the image: the credential's grants as access entries, its validity, a fresh
   revalidation deadline, and the current blacklists of the cylinders it opens;
4. write it (the driver writes atomically and verifies by reading back); only a verified write
   is recorded as the key's confirmed image. A key pulled out early keeps its old image and the
   job stays pending.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from drivers.base import (
    AuditOutcome,
    KeyAuditRecord,
    KeyEventKind,
    KeyImage,
    KeyRemoved,
    KeyStation,
    NoKeyInserted,
    StationInfo,
    WriteProgress,
    WriteResult,
)
from gateway.core import Core
from gateway.rules.evaluate import DesiredCredential
from gateway.store import desired as desired_store
from gateway.store import device_records as sync_store
from gateway.sync.events import SyncSink
from gateway.sync.images import PlannedImage, exposure_of_image, plan_key_image
from gateway.sync.planner import KEY
from gateway.sync.worker import CoreRunner, DeviceWorker, WorkerTiming

log = logging.getLogger(__name__)


@dataclass
class KeyVisit:
    """One key at the station: what it holds, what it should hold, and why."""

    serial: str
    station_id: str
    held: KeyImage
    planned: PlannedImage
    state: DesiredCredential | None
    registered: bool
    audit_new: int = 0
    result: WriteResult | None = None
    error: str | None = None
    outcome: str = "pending"  # written | up_to_date | declined | pulled | failed | unknown
    started: float = field(default_factory=time.perf_counter)

    @property
    def needs_write(self) -> bool:
        """True when the key's image differs from the planned one in what it opens."""
        held, new = self.held, self.planned.image
        return (
            held.enabled != new.enabled
            or held.access != new.access
            or held.valid_from != new.valid_from
            or held.valid_until != new.valid_until
            or held.schedules != new.schedules
            or held.blacklists != new.blacklists
            or held.revalidate_by != new.revalidate_by
        )


Decide = Callable[[KeyVisit], Awaitable[bool]]
Progress = Callable[[KeyVisit, WriteProgress], None]
Report = Callable[[KeyVisit], Awaitable[None] | None]


class StationWorker(DeviceWorker):
    """Serves one :class:`~drivers.base.KeyStation`.

    ``decide(visit)`` is asked before a write; without it a wall-mounted station writes every
    key and a desk station writes too (the demo's simulated operator). ``on_visit`` is called
    when a visit ends, whatever its outcome, and ``on_progress`` while a write goes on."""

    role = "station"

    def __init__(
        self,
        runner: CoreRunner,
        device_id: str,
        driver_factory: Callable[[], KeyStation],
        sink: SyncSink,
        *,
        decide: Decide | None = None,
        on_visit: Report | None = None,
        on_progress: Progress | None = None,
        on_event: Callable[[str, str], None] | None = None,
        timing: WorkerTiming | None = None,
    ) -> None:
        super().__init__(runner, device_id, sink, timing=timing)
        self.driver_factory = driver_factory
        self.decide = decide
        self.on_visit = on_visit
        self.on_progress = on_progress
        self.on_event = on_event
        self.info: StationInfo | None = None
        self.visits: list[KeyVisit] = []

    async def serve(self) -> None:
        driver = self.driver_factory()
        try:
            await self.guarded("connecting", driver.open())
            self.info = driver.info
            await self.set_online(
                True,
                "connected",
                {
                    "mounting": driver.info.mounting.value,
                    "protocol_version": driver.info.protocol_version,
                    "capabilities": sorted(c.value for c in driver.info.capabilities),
                    "firmware": driver.info.firmware,
                },
            )
            async for event in driver.events():
                if self.on_event is not None:
                    self.on_event(event.kind.value, event.serial)
                if event.kind is KeyEventKind.INSERTED:
                    visit = await self.visit(driver, event.serial)
                    self.visits.append(visit)
                    if self.on_visit is not None:
                        done = self.on_visit(visit)
                        if done is not None:
                            await done
        finally:
            await driver.close()

    # ------------------------------------------------------------------ one visit

    async def visit(self, driver: KeyStation, serial: str) -> KeyVisit:
        """Serve the key that was just inserted (see the module docstring)."""
        try:
            held = await self.guarded("reading the key", driver.read_key())
        except (KeyRemoved, NoKeyInserted) as exc:
            empty = KeyImage(serial, "", False, None, None, None)
            visit = KeyVisit(
                serial, self.device_id, empty, PlannedImage(empty, None, (), None, {}), None, False
            )
            visit.outcome, visit.error = "pulled", str(exc)
            return visit
        records = await self.guarded("reading the audit trail", driver.read_audit())
        visit = await self.runner.call(self._record_visit, serial, held, records)
        if records:
            await self.guarded("clearing the audit trail", driver.clear_audit(len(records)))
        if not visit.registered:
            visit.outcome = "unknown"
            return visit
        if not visit.needs_write:
            visit.outcome = "up_to_date"
            await self.runner.call(self.core.transaction, lambda s: self._confirm(s, visit))
            return visit
        if self.decide is not None and not await self.decide(visit):
            visit.outcome = "declined"
            return visit

        def progress(p: WriteProgress) -> None:
            if self.on_progress is not None:
                self.on_progress(visit, p)

        try:
            visit.result = await self.guarded(
                "writing the key", driver.write_key(visit.planned.image, progress=progress)
            )
        except KeyRemoved as exc:
            visit.outcome, visit.error = "pulled", str(exc)
            await self._failed(visit)
            return visit
        except Exception as exc:
            visit.outcome, visit.error = "failed", f"{type(exc).__name__}: {exc}"
            await self._failed(visit)
            raise
        visit.outcome = "written"
        await self.runner.call(self.core.transaction, lambda s: self._confirm(s, visit))
        return visit

    def _record_visit(self, serial: str, held: KeyImage, records: list[KeyAuditRecord]) -> KeyVisit:
        """On the core thread: store the audit trail and what the key holds; plan its image."""

        def work(s: Session) -> KeyVisit:
            core = self.core
            now = core.clock()
            new = record_key_visit(s, core, self.sink, self.device_id, serial, held, records)
            planned = plan_key_image(core.engine, serial, now, key_blacklists(s, core, serial))
            return KeyVisit(
                serial,
                self.device_id,
                held,
                planned,
                core.engine.state(serial),
                serial in core.engine.facts.credentials,
                audit_new=new,
            )

        return self.core.transaction(work)

    def _confirm(self, s: Session, visit: KeyVisit) -> None:
        # Nothing written: the key keeps its own revision tag with the same content.
        result = visit.result
        record_key_confirmed(
            s,
            self.core,
            self.sink,
            self.device_id,
            visit.planned,
            revision=visit.planned.image.revision if result is not None else visit.held.revision,
            written=None if result is None else (result.bytes_sent, result.delta),
            ms=(time.perf_counter() - visit.started) * 1000,
        )

    async def _failed(self, visit: KeyVisit) -> None:
        def record(s: Session) -> None:
            record_key_failed(
                s,
                self.sink,
                self.device_id,
                visit.serial,
                outcome=visit.outcome,
                error=visit.error or "",
                at=self.core.clock(),
            )

        await self.runner.call(self.core.transaction, record)


# ------------------------------------------------------------------ shared with the site hub
# A key visited at a site's station (gateway/agent/keyhub.py) is recorded by these same
# functions, so central systems see it exactly like a key at one of the core's stations.


def record_key_visit(
    s: Session,
    core: Core,
    sink: SyncSink,
    station_id: str,
    serial: str,
    held: KeyImage,
    records: list[KeyAuditRecord],
) -> int:
    """Store a key's audit records not stored before (reporting them, and the blacklist
    versions cylinders confirmed), and what the key holds as its exposure when that differs
    from what it was last confirmed to hold. Idempotent; returns how many records were new."""
    now = core.clock()
    new = sync_store.add_key_audit(
        s,
        [
            sync_store.StoredKeyAudit(
                serial,
                r.source,
                str(r.cylinder),
                r.key_serial,
                r.sequence,
                r.at,
                r.outcome.value,
                r.reason,
                r.blacklist_version,
            )
            for r in records
        ],
        now,
    )
    for r in new:
        _report_audit(s, core, sink, station_id, r)
    confirmed = sync_store.get_key(s, serial)
    if serial in core.engine.facts.credentials and (
        confirmed is None or confirmed.revision != held.revision
    ):
        # What the key really holds wins over what we believed it held.
        core.apply_exposure(s, exposure_of_image(held, now))
    return len(new)


def key_blacklists(s: Session, core: Core, serial: str) -> dict[str, tuple[int, tuple[str, ...]]]:
    """The current blacklist (version, serials) of every cylinder key ``serial`` opens."""
    state = core.engine.state(serial)
    out: dict[str, tuple[int, tuple[str, ...]]] = {}
    if state is None:
        return out
    for cylinder in core.engine.cylinders_of(state):
        bl = desired_store.get_blacklist(s, cylinder)
        if bl is not None:
            out[cylinder] = (bl.version, bl.serials)
    return out


def _report_audit(
    s: Session, core: Core, sink: SyncSink, station_id: str, r: sync_store.StoredKeyAudit
) -> None:
    body = {
        "key": r.key_serial,
        "cylinder": r.cylinder,
        "at": r.at.isoformat(),
        "via_station": station_id,
        "carrier": r.carrier,
        "source": r.source,
    }
    if r.outcome == AuditOutcome.BLACKLIST_APPLIED.value:
        if sync_store.confirm_cylinder_blacklist(
            s, r.cylinder, r.blacklist_version, r.carrier, core.clock()
        ):
            sink.event(s, "blacklist_confirmed", body | {"version": r.blacklist_version})
        return
    kind = "access_granted" if r.outcome == AuditOutcome.GRANTED.value else "access_denied"
    sink.event(s, kind, body | ({"reason": r.reason} if r.reason else {}))


def record_key_confirmed(
    s: Session,
    core: Core,
    sink: SyncSink,
    station_id: str,
    planned: PlannedImage,
    *,
    revision: str,
    written: tuple[int, bool] | None,
    ms: float,
) -> None:
    """Record that a key holds ``planned`` (tagged ``revision``): its confirmed image, its
    exposure, the job done; and, when it was ``written`` now (bytes sent, delta), report
    ``key_programmed`` (and ``revocation_confirmed`` when it disables the key)."""
    now = core.clock()
    serial = planned.image.serial
    before = sync_store.get_key(s, serial)
    sync_store.confirm_key(
        s,
        sync_store.KeyConfirmed(
            serial=serial,
            revision=revision,
            credential_revision=planned.credential_revision,
            enabled=planned.image.enabled,
            cylinders=planned.cylinders,
            lapses_at=planned.lapses_at,
            blacklists=planned.blacklists,
            station_id=station_id,
            confirmed_at=now,
        ),
    )
    core.apply_exposure(s, planned.exposure())
    if planned.credential_revision is not None:
        sync_store.finish_job(s, KEY, serial, planned.credential_revision)
    if written is not None:
        sink.event(
            s,
            "key_programmed",
            {
                "key": serial,
                "station": station_id,
                "revision": revision,
                "enabled": planned.image.enabled,
                "cylinders": len(planned.cylinders),
                "bytes": written[0],
                "delta": written[1],
                "ms": round(ms, 1),
            },
        )
        if not planned.image.enabled and (before is None or before.enabled):
            sink.event(
                s,
                "revocation_confirmed",
                {"credential": serial, "device": station_id},
            )
    sink.credential_state(s, core, serial)


def record_key_failed(
    s: Session,
    sink: SyncSink,
    station_id: str,
    serial: str,
    *,
    outcome: str,
    error: str,
    at: datetime,
) -> bool:
    """Record that writing key ``serial`` at ``station_id`` ended at ``at`` without the
    planned image (``outcome`` pulled: the key was taken out early; failed: the write or its
    verification failed): the key's job stays pending with the attempt counted, and
    ``key_programming_failed`` is reported. Idempotent for the key's latest failure: one
    already recorded with the same time and error changes nothing (returns False)."""
    reason = (error or outcome)[:500]
    job = sync_store.get_job(s, KEY, serial)
    if job is not None and job.last_attempt_at == at and job.last_error == reason:
        return False
    sync_store.fail_job(s, KEY, serial, reason, at)
    sink.event(
        s,
        "key_programming_failed",
        {"key": serial, "station": station_id, "outcome": outcome, "error": error},
    )
    return True
