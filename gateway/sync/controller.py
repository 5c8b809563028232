"""The worker of one door controller: keeps its allow-list, its settings and its clock equal
to the desired ones and collects its events.

The desired state of a controller is its allow-list (derived by the rules engine), its
settings (lock release and held-open times, door modes: from the configuration) and its
clock (the gateway's). On every connection it reads the controller's identity; a generation
different from the one stored means the controller lost its memory, and everything is
written again. Whenever the desired revision differs from the confirmed one it writes the
whole allow-list (the driver stages, commits and verifies the checksum) and only then records
it as confirmed. The settings and the clock are read and restored on every connection, after
every generation change and every ``settings_check_s``. Events are read after the stored
cursor, stored (deduplicated) and then acknowledged on the controller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from drivers.base import (
    AllowListResult,
    ControllerInfo,
    ControllerSettings,
    DenyReason,
    DoorController,
)
from gateway.rules.hardware import DesiredController
from gateway.store import device_records as sync_store
from gateway.sync.events import SyncSink
from gateway.sync.images import allow_list
from gateway.sync.planner import CONTROLLER
from gateway.sync.worker import CoreRunner, DeviceWorker, WorkerTiming

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Plan:
    desired: DesiredController
    confirmed: sync_store.ControllerConfirmed | None


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
    ) -> None:
        super().__init__(runner, device_id, sink, timing=timing)
        self.driver_factory = driver_factory
        self.settings = settings or ControllerSettings()
        """The settings the controller must hold (fields left unset are not managed)."""
        self.clock_tolerance_s = clock_tolerance_s
        self.settings_check_s = settings_check_s
        self.generation: int | None = None
        self.writes = 0
        self.settings_writes = 0
        self.clock_sets = 0
        self.last_write: AllowListResult | None = None
        self._touched: set[str] = set()
        self._reported_id: str | None = None
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
        held = await self.guarded("reading the settings", driver.read_settings())
        if self.settings.differs_from(held):
            await self.guarded("writing the settings", driver.write_settings(self.settings))
            self.settings_writes += 1
            wrote = True
            await self._report(
                "controller_settings_written",
                {
                    "device": self.device_id,
                    "pulse_seconds": self.settings.pulse_seconds,
                    "held_open_seconds": self.settings.held_open_seconds,
                    "door_modes": {str(d): m.value for d, m in self.settings.door_modes},
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
        return _Plan(self.core.engine.controller(self.device_id), confirmed)

    async def sync_once(self, driver: DoorController) -> bool:
        """Write the allow-list if the controller does not hold the desired one. Returns
        True when something was written."""
        plan = await self.runner.call(self._plan)
        if plan.confirmed is not None and plan.confirmed.revision == plan.desired.revision:
            return False
        entries, schedules = allow_list(plan.desired)
        touched, self._touched = self._touched, set()
        started = time.perf_counter()
        try:
            result = await self.guarded(
                "writing the allow-list", driver.write_allow_list(entries, schedules)
            )
        except Exception as exc:
            self._touched |= touched
            error = f"{type(exc).__name__}: {exc}"
            await self.runner.call(
                self.core.transaction,
                lambda s: sync_store.fail_job(
                    s, CONTROLLER, self.device_id, error, self.core.clock()
                ),
            )
            raise
        generation = self.generation or 0
        numbers = [e.credential for e in plan.desired.entries]

        def confirm(s: Session) -> None:
            now = self.core.clock()
            old = sync_store.get_controller(s, self.device_id)
            sync_store.confirm_controller(
                s,
                self.device_id,
                plan.desired.revision,
                result.checksum,
                generation,
                numbers,
                len(entries),
                now,
            )
            sync_store.finish_job(s, CONTROLLER, self.device_id, plan.desired.revision)
            before = set(old.credentials) if old else set()
            after = set(numbers)
            self.sink.event(
                s,
                "allow_list_written",
                {
                    "device": self.device_id,
                    "revision": plan.desired.revision,
                    "entries": len(entries),
                    "checksum": result.checksum,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            for number in sorted(before - after, key=int):
                self.sink.event(
                    s, "revocation_confirmed", {"credential": number, "device": self.device_id}
                )
            for number in sorted((before ^ after) | (touched & (before | after)), key=int):
                self.sink.credential_state(s, self.core, number)

        await self.runner.call(self.core.transaction, confirm)
        # Counted only now: whoever waits for a write may read its confirmation at once.
        self.writes += 1
        self.last_write = result
        log.info(
            "controller %s holds revision %s (%d entries)",
            self.device_id,
            plan.desired.revision,
            len(entries),
        )
        return True

    async def collect_events(self, driver: DoorController) -> int:
        """Store the controller's new events, report them, then acknowledge them."""
        confirmed = await self.runner.call(self._confirmed)
        after = 0
        if confirmed is not None and confirmed.event_generation == self.generation:
            after = confirmed.event_sequence
        total = 0
        while True:
            events = await self.guarded("reading events", driver.read_events(after, limit=64))
            if not events:
                return total
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

            def record(
                s: Session,
                stored: list[sync_store.StoredControllerEvent] = stored,
                reasons: dict[int, DenyReason | None] = reasons,
            ) -> None:
                for ev in sync_store.add_controller_events(s, stored, self.core.clock()):
                    body: dict[str, object] = {
                        "device": self.device_id,
                        "credential": ev.credential,
                        "door": ev.door,
                        "at": ev.at.isoformat(),
                        "sequence": ev.sequence,
                    }
                    if ev.kind == "denied":
                        reason = reasons.get(ev.sequence)
                        body["reason"] = reason.value if reason else DenyReason.OTHER.value
                    self.sink.event(
                        s,
                        f"access_{ev.kind}"
                        if ev.kind in ("granted", "denied")
                        else f"door_{ev.kind}",
                        body,
                    )

            await self.runner.call(self.core.transaction, record)
            last = max(e.sequence for e in events)
            await self.guarded("acknowledging events", driver.ack_events(last))
            after = last
            total += len(events)
