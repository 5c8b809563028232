"""The worker of one door controller: keeps its allow-list, its settings and its clock equal
to the desired ones and collects its events.

The desired state of a controller is its allow-list (derived by the rules engine), its
settings (lock release and held-open times, door modes: from the configuration) and its
clock (the gateway's). On every connection it reads the controller's identity; a generation
different from the one stored means the controller lost its memory, and everything is
written again. Whenever the desired revision differs from the confirmed one it writes the
allow-list and only then records it as confirmed (:meth:`ControllerWorker.sync_once`, in
named steps). The settings and the clock are read and restored on every connection, after
every generation change and every ``settings_check_s``. Events are read after the stored
cursor, stored (deduplicated) and then acknowledged on the controller.

Devices without an atomic commit
--------------------------------
A driver whose ``atomic_writes`` is False (UHPPOTE) writes record by record, by difference,
revocations first, and verifies by reading back. A write that also grants new credentials
can take long (a card per request), so the worker first writes the list *without* the new
credentials: the removals and the changes of credentials the controller already holds. That
write is short; once verified it is recorded (an intermediate revision ``<desired>~rev``)
and its revocations are confirmed at once. Then the whole list follows. After every write to
such a device the worker reads the checksum back once more (the driver compares the card
count and a few records with what it wrote) before it records anything. A write cut short
(the time limit, a lost link) leaves any mix of old and new records; the stored checksum no
longer matches, and the next connection writes again by difference.

Events across restarts
----------------------
The last stored event sequence is the cursor (per controller and generation, in the store):
a restarted gateway reads after it, so no event is lost while the device still holds it.
Events the device lost before they were read (an overwritten ring, a log that was reset,
:meth:`~drivers.base.DoorController.take_event_gaps`) are reported as
``controller_events_lost``; after a reset the worker reads from the controller's start again.

Time limits
-----------
Every operation is bounded by the controller's ``device_timeout_s`` (default
``sync.device_timeout_s``), an allow-list write by its ``write_timeout_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from drivers.base import (
    AllowEntry,
    AllowListResult,
    ControllerEvent,
    ControllerEventKind,
    ControllerInfo,
    ControllerSettings,
    DenyReason,
    DoorController,
    HardwareSchedule,
    VerifyMismatch,
)
from gateway.rules.hardware import DesiredController
from gateway.store import device_records as sync_store
from gateway.sync.events import SyncSink
from gateway.sync.images import allow_list
from gateway.sync.planner import CONTROLLER
from gateway.sync.worker import CoreRunner, DeviceWorker, WorkerTiming

log = logging.getLogger(__name__)


EVENT_KINDS: dict[ControllerEventKind, str] = {
    ControllerEventKind.GRANTED: "access_granted",
    ControllerEventKind.DENIED: "access_denied",
    ControllerEventKind.FORCED: "door_forced",
    ControllerEventKind.HELD_OPEN: "door_held_open",
    ControllerEventKind.PULSED: "door_pulsed",
    ControllerEventKind.TAMPER: "device_tamper",
    ControllerEventKind.TAMPER_CLEARED: "device_tamper_cleared",
    ControllerEventKind.POWER_FAILURE: "device_power_failure",
    ControllerEventKind.POWER_RESTORED: "device_power_restored",
    ControllerEventKind.READER_OFFLINE: "reader_offline",
    ControllerEventKind.READER_ONLINE: "reader_online",
}
"""The sync engine's event kind of each controller event kind."""

REVOCATIONS_FIRST = "~rev"
"""Suffix of the intermediate revision a non-atomic controller confirms before its grants."""


@dataclass(frozen=True)
class _Plan:
    desired: DesiredController
    confirmed: sync_store.ControllerConfirmed | None
    entries: list[AllowEntry]
    schedules: list[HardwareSchedule]

    @property
    def up_to_date(self) -> bool:
        return self.confirmed is not None and self.confirmed.revision == self.desired.revision

    def numbers(self, entries: list[AllowEntry] | None = None) -> list[str]:
        return sorted(
            {str(e.credential) for e in (self.entries if entries is None else entries)}, key=int
        )

    def revocations_first(self) -> list[AllowEntry] | None:
        """The list without the credentials the controller does not hold yet, when the desired
        list both takes some away and adds some (None otherwise: one write is as short)."""
        held = set(self.confirmed.credentials) if self.confirmed is not None else set()
        wanted = set(self.numbers())
        if not held or not (held - wanted) or not (wanted - held):
            return None
        return [e for e in self.entries if str(e.credential) in held]


class ControllerWorker(DeviceWorker):
    """Serves one :class:`~drivers.base.DoorController`."""

    role = "controller"

    def __init__(
        self,
        runner: CoreRunner,
        device_id: str,
        driver_factory: Callable[[], DoorController],
        sink: SyncSink,
        *,
        timing: WorkerTiming | None = None,
        settings: ControllerSettings | None = None,
        clock_tolerance_s: float = 2.0,
        settings_check_s: float = 60.0,
        write_timeout_s: float | None = None,
    ) -> None:
        super().__init__(runner, device_id, sink, timing=timing)
        self.driver_factory = driver_factory
        self.settings = settings or ControllerSettings()
        """The settings the controller must hold (fields left unset are not managed)."""
        self.write_timeout_s = write_timeout_s or self.timeout_s
        """Time limit of one allow-list write (the operation limit when not given)."""
        self.events_lost: list[tuple[int, int, str]] = []
        """Event gaps the controller reported (first, last, reason), most recent last."""
        self.clock_tolerance_s = clock_tolerance_s
        self.settings_check_s = settings_check_s
        self.generation: int | None = None
        self.writes = 0
        self.settings_writes = 0
        self.clock_sets = 0
        self.last_write: AllowListResult | None = None
        self._touched: set[str] = set()
        self._reported_id: str | None = None
        self._warned_settings = False
        self._settings_checked: tuple[int | None, float] | None = None
        """Generation and monotonic time of the last settings and clock check."""

    def note_changed(self, numbers: set[str]) -> None:
        """Credentials whose desired state changed: their confirmed state is reported once
        the controller holds the new list."""
        self._touched |= numbers
        self.wake()

    async def serve(self) -> None:
        driver = self.driver_factory()
        try:
            await self.guarded("connecting", driver.open())
            info = await self.guarded("reading the identity", driver.read_info())
            await self._check_generation(driver, info)
            await self.set_online(
                True,
                "connected",
                {
                    "doors": info.doors,
                    "capacity": info.capacity,
                    "generation": info.generation,
                    "firmware": info.firmware,
                },
            )
            while True:
                await self.sync_once(driver)  # revocations first, settings after
                await self.keep_settings(driver)
                await self.set_error(None)
                await self.collect_events(driver)
                await self._sleep_or_wake(self.poll_s)
                info = await self.guarded("reading the identity", driver.read_info())
                await self._check_generation(driver, info)
        finally:
            await driver.close()

    async def keep_settings(self, driver: DoorController, *, force: bool = False) -> bool:
        """Restore the controller's settings and clock when they differ from the desired
        ones. Runs at the first call after a connection or a generation change and every
        ``settings_check_s``; returns True when something was written."""
        now = time.monotonic()
        checked = self._settings_checked
        if (
            not force
            and checked is not None
            and checked[0] == self.generation
            and now - checked[1] < self.settings_check_s
        ):
            return False
        wrote = False
        wanted = self._supported_settings(driver)
        held = await self.guarded("reading the settings", driver.read_settings())
        if wanted.differs_from(held):
            await self.guarded("writing the settings", driver.write_settings(wanted))
            self.settings_writes += 1
            wrote = True
            await self._report(
                "controller_settings_written",
                {
                    "device": self.device_id,
                    "pulse_seconds": wanted.pulse_seconds,
                    "held_open_seconds": wanted.held_open_seconds,
                    "door_modes": {str(d): m.value for d, m in wanted.door_modes},
                },
            )
        clock = await self.guarded("reading the clock", driver.read_clock())
        gateway_now = self.core.clock()
        drift = (clock - gateway_now).total_seconds()
        if abs(drift) > self.clock_tolerance_s:
            await self.guarded("setting the clock", driver.set_clock(self.core.clock()))
            self.clock_sets += 1
            wrote = True
            await self._report(
                "controller_clock_set", {"device": self.device_id, "drift_s": round(drift, 1)}
            )
        self._settings_checked = (self.generation, now)
        return wrote

    def _supported_settings(self, driver: DoorController) -> ControllerSettings:
        """The desired settings without the fields the device has no setting for (logged
        once: the configuration asks for something this controller cannot keep)."""
        unsupported = type(driver).unsupported_settings
        dropped = [n for n in sorted(unsupported) if getattr(self.settings, n, None) is not None]
        if not dropped:
            return self.settings
        if not self._warned_settings:
            self._warned_settings = True
            log.warning(
                "controller %s has no setting %s; the configured value is not kept",
                self.device_id,
                ", ".join(dropped),
            )
        cleared: dict[str, Any] = {n: None for n in dropped}
        return replace(self.settings, **cleared)

    async def _report(self, kind: str, body: dict[str, object]) -> None:
        await self.runner.call(self.core.transaction, lambda s: self.sink.event(s, kind, body))

    async def _check_generation(self, driver: DoorController, info: ControllerInfo) -> None:
        if info.controller_id != self._reported_id:
            # A device's own id (a serial number) need not be the configured id; said once.
            self._reported_id = info.controller_id
            if info.controller_id and info.controller_id != self.device_id:
                log.info("controller %s reports the id %s", self.device_id, info.controller_id)
        confirmed = await self.runner.call(self._confirmed)
        if confirmed is not None and confirmed.generation == info.generation:
            self.generation = info.generation
            # Trust the store only while the controller really holds what it says: a restored
            # backup, or a write by another tool, would not.
            held = await self.guarded("reading the checksum", driver.read_checksum())
            if held == confirmed.checksum:
                return
            log.warning(
                "controller %s holds checksum %08x, the store says %08x: rewriting",
                self.device_id,
                held,
                confirmed.checksum,
            )

        def forget(s: Session) -> None:
            now = self.core.clock()
            old = sync_store.get_controller(s, self.device_id)
            sync_store.forget_controller(s, self.device_id, info.generation, now)
            desired = self.core.engine.controller(self.device_id)
            sync_store.put_job(
                s, CONTROLLER, self.device_id, desired.revision, sync_store.REVOCATION, now
            )
            if old is not None:
                self.sink.event(
                    s,
                    "controller_memory_lost",
                    {
                        "device": self.device_id,
                        "generation": info.generation,
                        "previous_generation": old.generation,
                    },
                )

        await self.runner.call(self.core.transaction, forget)
        self.generation = info.generation

    def _confirmed(self) -> sync_store.ControllerConfirmed | None:
        with self.core.db.session(readonly=True) as s:
            return sync_store.get_controller(s, self.device_id)

    def _plan(self) -> _Plan:
        with self.core.db.session(readonly=True) as s:
            confirmed = sync_store.get_controller(s, self.device_id)
        desired = self.core.engine.controller(self.device_id)
        entries, schedules = allow_list(desired)
        return _Plan(desired, confirmed, entries, schedules)

    async def sync_once(self, driver: DoorController) -> bool:
        """Write the allow-list if the controller does not hold the desired one. Returns
        True when something was written.

        Steps: plan (desired against confirmed), on a device without an atomic commit the
        revocations first (:meth:`_write_revocations_first`), the write
        (:meth:`_write`), the read-back (:meth:`_read_back`), the record
        (:meth:`_record_confirmed`); a failure is recorded on the job
        (:meth:`_record_failure`) and raised."""
        plan = await self.runner.call(self._plan)
        if plan.up_to_date:
            return False
        touched, self._touched = self._touched, set()
        started = time.perf_counter()
        try:
            if not type(driver).atomic_writes:
                plan = await self._write_revocations_first(driver, plan, touched)
            result = await self._write(driver, plan.entries, plan.schedules)
            await self._read_back(driver, result)
        except Exception as exc:
            self._touched |= touched
            await self._record_failure(exc)
            raise
        await self._record_confirmed(plan, plan.desired.revision, result, touched, started)
        # Counted only now: whoever waits for a write may read its confirmation at once.
        self.writes += 1
        self.last_write = result
        log.info(
            "controller %s holds revision %s (%d entries)",
            self.device_id,
            plan.desired.revision,
            len(plan.entries),
        )
        return True

    async def _write(
        self, driver: DoorController, entries: list[AllowEntry], schedules: list[HardwareSchedule]
    ) -> AllowListResult:
        """Write an allow-list, within the controller's write time limit."""
        return await self.guarded(
            "writing the allow-list",
            driver.write_allow_list(entries, schedules),
            timeout_s=self.write_timeout_s,
        )

    async def _read_back(self, driver: DoorController, result: AllowListResult) -> None:
        """On a device without an atomic commit, read the checksum back once more before
        anything is recorded (an atomic device's commit already compared it)."""
        if type(driver).atomic_writes:
            return
        held = await self.guarded("reading the checksum back", driver.read_checksum())
        if held != result.checksum:
            raise VerifyMismatch(
                f"controller {self.device_id} holds checksum {held:08x} after writing "
                f"{result.checksum:08x}",
                device_id=self.device_id,
            )

    async def _write_revocations_first(
        self, driver: DoorController, plan: _Plan, touched: set[str]
    ) -> _Plan:
        """Write and confirm the list without new credentials when the desired one also adds
        some (see the module documentation); returns the plan of the rest."""
        first = plan.revocations_first()
        if first is None:
            return plan
        started = time.perf_counter()
        result = await self._write(driver, first, plan.schedules)
        await self._read_back(driver, result)
        interim = plan.desired.revision + REVOCATIONS_FIRST
        await self._record_confirmed(
            replace(plan, entries=first), interim, result, touched, started
        )
        log.info(
            "controller %s: revocations confirmed before %d new credentials are written",
            self.device_id,
            len(set(plan.numbers()) - set(plan.numbers(first))),
        )
        confirmed = await self.runner.call(self._confirmed)
        return replace(plan, confirmed=confirmed)

    async def _record_failure(self, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        await self.runner.call(
            self.core.transaction,
            lambda s: sync_store.fail_job(s, CONTROLLER, self.device_id, error, self.core.clock()),
        )

    async def _record_confirmed(
        self,
        plan: _Plan,
        revision: str,
        result: AllowListResult,
        touched: set[str],
        started: float,
    ) -> None:
        """Record the list the controller verified (``plan.entries``) as ``revision``, confirm
        the revocations it made, finish the job when it is the desired revision, and report
        the states of the credentials it changed."""
        generation = self.generation or 0
        numbers = plan.numbers()
        final = revision == plan.desired.revision

        def confirm(s: Session) -> None:
            now = self.core.clock()
            old = sync_store.get_controller(s, self.device_id)
            sync_store.confirm_controller(
                s,
                self.device_id,
                revision,
                result.checksum,
                generation,
                numbers,
                len(plan.entries),
                now,
            )
            if final:
                sync_store.finish_job(s, CONTROLLER, self.device_id, revision)
            before = set(old.credentials) if old else set()
            after = set(numbers)
            self.sink.event(
                s,
                "allow_list_written",
                {
                    "device": self.device_id,
                    "revision": revision,
                    "entries": len(plan.entries),
                    "checksum": result.checksum,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            for number in sorted(before - after, key=int):
                self.sink.event(
                    s, "revocation_confirmed", {"credential": number, "device": self.device_id}
                )
            changed = (before ^ after) | (touched & (before | after))
            for number in sorted(changed, key=int):
                self.sink.credential_state(s, self.core, number)

        await self.runner.call(self.core.transaction, confirm)

    async def collect_events(self, driver: DoorController) -> int:
        """Store the controller's new events, report them, then acknowledge them; report the
        events the controller lost before they were read."""
        confirmed = await self.runner.call(self._confirmed)
        after = 0
        if confirmed is not None and confirmed.event_generation == self.generation:
            after = confirmed.event_sequence
        total = 0
        while True:
            events = await self.guarded("reading events", driver.read_events(after, limit=64))
            if await self._report_lost_events(driver):
                after = 0  # the controller's log restarted: read it from its start
                continue
            if not events:
                return total
            await self.runner.call(
                self.core.transaction, partial(self._store_events, events=events)
            )
            last = max(e.sequence for e in events)
            await self.guarded("acknowledging events", driver.ack_events(last))
            after = last
            total += len(events)

    async def _report_lost_events(self, driver: DoorController) -> bool:
        """Report the gaps the driver found; True when the controller's log was reset."""
        gaps = driver.take_event_gaps()
        if not gaps:
            return False
        for gap in gaps:
            self.events_lost.append((gap.first, gap.last, gap.reason))
            log.warning(
                "controller %s lost events %d..%d before they were read (%s)",
                self.device_id,
                gap.first,
                gap.last,
                gap.reason,
            )
        del self.events_lost[:-100]

        def record(s: Session) -> None:
            for gap in gaps:
                self.sink.event(
                    s,
                    "controller_events_lost",
                    {
                        "device": self.device_id,
                        "first": gap.first,
                        "last": gap.last,
                        "reason": gap.reason,
                        "error": f"events {gap.first}..{gap.last} {gap.reason}",
                    },
                )

        await self.runner.call(self.core.transaction, record)
        return any(g.reason == "reset" for g in gaps)

    def _store_events(self, s: Session, *, events: list[ControllerEvent]) -> None:
        """Store the events (deduplicated by generation and sequence) and report the new
        ones, in the caller's transaction."""
        generation = self.generation or 0
        stored = [
            sync_store.StoredControllerEvent(
                self.device_id,
                generation,
                e.sequence,
                e.kind.value,
                str(e.credential),
                e.door,
                e.at,
            )
            for e in events
        ]
        reasons = {e.sequence: e.reason for e in events}
        for ev in sync_store.add_controller_events(s, stored, self.core.clock()):
            body: dict[str, object] = {
                "device": self.device_id,
                "door": ev.door,
                "at": ev.at.isoformat(),
                "sequence": ev.sequence,
            }
            if ev.kind in ("granted", "denied") or ev.credential != "0":
                body["credential"] = ev.credential
            if ev.kind == "denied":
                reason = reasons.get(ev.sequence)
                body["reason"] = reason.value if reason else DenyReason.OTHER.value
            self.sink.event(s, EVENT_KINDS[ControllerEventKind(ev.kind)], body)
