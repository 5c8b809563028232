"""The agent's controller worker: keeps one door controller's allow-list equal to the desired
one the agent holds locally, and collects its events into the local outbox.

It needs nothing from the core: while the link is down it keeps serving the controller with
the last desired state accepted (the controller decides at the door from the list it holds)
and keeps collecting events. Like the gateway's own controller worker
(:mod:`gateway.sync.controller`) it reads the controller's identity on every connection and
rewrites everything when the generation or the checksum differs from the one confirmed, and
records a write only after the driver verified it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from drivers.base import (
    AllowEntry,
    ControllerInfo,
    ControllerSettings,
    DoorController,
    HardwareSchedule,
    ScheduleWindow,
)
from gateway.agent.device import AgentDevice
from gateway.agent.local import AgentStore
from gateway.bridge.sitepayloads import ControllerDoc
from gateway.sync.controller import REVOCATIONS_FIRST
from gateway.sync.worker import WorkerTiming

log = logging.getLogger(__name__)


def driver_list(doc: ControllerDoc) -> tuple[list[AllowEntry], list[HardwareSchedule]]:
    """A desired controller document in the driver's types."""
    entries = [
        AllowEntry(
            credential=e.credential,
            doors_mask=e.doors_mask,
            valid_from=e.valid_from,
            valid_until=e.valid_until,
            schedule_id=e.schedule_id,
        )
        for e in doc.entries
    ]
    schedules = [
        HardwareSchedule(
            s.schedule_id,
            tuple(ScheduleWindow(w.days_mask, w.start_minute, w.end_minute) for w in s.windows),
        )
        for s in doc.schedules
    ]
    return entries, schedules


def revocations_first(entries: list[AllowEntry], held: set[str]) -> list[AllowEntry] | None:
    """The list without the credentials the controller does not hold yet, when the desired
    list both takes some away and adds some (None otherwise: one write is as short)."""
    wanted = {str(e.credential) for e in entries}
    if not held or not (held - wanted) or not (wanted - held):
        return None
    return [e for e in entries if str(e.credential) in held]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class AgentControllerWorker(AgentDevice):
    """Serves one :class:`~drivers.base.DoorController` from the agent's local store."""

    kind = "controller"

    def __init__(
        self,
        store: AgentStore,
        device_id: str,
        driver_factory: Callable[[], DoorController],
        *,
        timing: WorkerTiming | None = None,
        on_outbox: Callable[[], None] = lambda: None,
        settings: ControllerSettings | None = None,
        clock_tolerance_s: float = 2.0,
        settings_check_s: float = 60.0,
    ) -> None:
        super().__init__(store, device_id, timing, on_outbox)
        self.driver_factory = driver_factory
        self.poll_s = (timing or WorkerTiming()).poll_s
        self.settings = settings or ControllerSettings()
        """The settings the controller must hold (from the agent's configuration)."""
        self.clock_tolerance_s = clock_tolerance_s
        self.settings_check_s = settings_check_s
        self.settings_writes = 0
        self.clock_sets = 0
        self._settings_checked: tuple[int | None, float] | None = None
        self.generation: int | None = None
        self.writes = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """The desired state changed: look now instead of at the next poll."""
        self._wake.set()

    async def serve(self) -> None:
        driver = self.driver_factory()
        try:
            await self.guarded("connecting", driver.open())
            await self._check(
                driver, await self.guarded("reading the identity", driver.read_info())
            )
            self._availability(True, "connected")
            while True:
                await self.sync_once(driver)  # revocations first, settings after
                await self.keep_settings(driver)
                await self.collect_events(driver)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self._wake.wait()
                self._wake.clear()
                info = await self.guarded("reading the identity", driver.read_info())
                await self._check(driver, info)
        finally:
            await driver.close()

    async def _check(self, driver: DoorController, info: ControllerInfo) -> None:
        """Trust what the store says the controller holds only while its generation and its
        checksum say so."""
        confirmed = self.store.confirmed(self.device_id)
        if confirmed is not None and confirmed.generation == info.generation:
            self.generation = info.generation
            if not confirmed.revision:
                return
            held = await self.guarded("reading the checksum", driver.read_checksum())
            if held == confirmed.checksum:
                return
            log.warning("controller %s holds checksum %08x: rewriting", self.device_id, held)
        self.store.forget(self.device_id, info.generation)
        self.generation = info.generation

    async def sync_once(self, driver: DoorController) -> bool:
        """Write the desired allow-list if the controller does not hold it. On a controller
        without an atomic commit (UHPPOTE) a list that both takes credentials away and adds
        some is written in two steps, as the core's own worker does: first without the new
        credentials (confirmed as revision ``<desired>~rev``), then whole."""
        desired = self.store.desired(self.device_id)
        if desired is None:
            return False
        confirmed = self.store.confirmed(self.device_id)
        if confirmed is not None and confirmed.revision == desired.revision:
            return False
        entries, schedules = driver_list(desired)
        if not type(driver).atomic_writes and confirmed is not None:
            first = revocations_first(entries, set(confirmed.credentials))
            if first is not None:
                await self._write(driver, desired.revision + REVOCATIONS_FIRST, first, schedules)
                log.info(
                    "controller %s: revocations confirmed before %d new credentials are written",
                    self.device_id,
                    len(entries) - len(first),
                )
        await self._write(driver, desired.revision, entries, schedules)
        return True

    async def _write(
        self,
        driver: DoorController,
        revision: str,
        entries: list[AllowEntry],
        schedules: list[HardwareSchedule],
    ) -> None:
        """Write ``entries`` and record them as ``revision`` once verified (queued for the
        core)."""
        started = time.perf_counter()
        result = await self.guarded(
            "writing the allow-list", driver.write_allow_list(entries, schedules)
        )
        if not type(driver).atomic_writes:
            # no atomic commit: read the checksum back before recording anything
            held = await self.guarded("reading the checksum back", driver.read_checksum())
            if held != result.checksum:
                raise RuntimeError(
                    f"controller {self.device_id} holds checksum {held:08x} after writing "
                    f"{result.checksum:08x}"
                )
        self.store.confirm(
            self.device_id,
            revision,
            result.checksum,
            self.generation or 0,
            [str(e.credential) for e in entries],
            len(entries),
            (time.perf_counter() - started) * 1000,
            _now(),
        )
        self.writes += 1
        self.on_outbox()
        log.info(
            "controller %s holds revision %s (%d entries)", self.device_id, revision, len(entries)
        )

    async def keep_settings(self, driver: DoorController) -> bool:
        """Restore the controller's settings and clock (the site computer's, kept by NTP)
        when they differ, at the first call after a connection or a generation change and
        every ``settings_check_s``; returns True when something was written."""
        now = time.monotonic()
        checked = self._settings_checked
        if (
            checked is not None
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
            log.info("controller %s: settings restored", self.device_id)
        clock = await self.guarded("reading the clock", driver.read_clock())
        drift = (clock - datetime.now(UTC)).total_seconds()
        if abs(drift) > self.clock_tolerance_s:
            await self.guarded("setting the clock", driver.set_clock(datetime.now(UTC)))
            self.clock_sets += 1
            wrote = True
            log.info("controller %s: clock set (drift %.1f s)", self.device_id, drift)
        self._settings_checked = (self.generation, now)
        return wrote

    def _report_lost_events(self, driver: DoorController) -> bool:
        """Queue the events the driver found lost before they were read (the core reports
        them as ``controller_events_lost``); True when the controller's log was reset."""
        gaps = driver.take_event_gaps()
        for gap in gaps:
            log.warning(
                "controller %s lost events %d..%d before they were read (%s)",
                self.device_id,
                gap.first,
                gap.last,
                gap.reason,
            )
            self.store.note(
                {
                    "kind": "events_lost",
                    "controller": self.device_id,
                    "generation": self.generation or 0,
                    "sequence": gap.first,
                    "last": gap.last,
                    "reason": gap.reason,
                    "at": _now(),
                },
                None,
            )
        if gaps:
            self.on_outbox()
        return any(g.reason == "reset" for g in gaps)

    async def collect_events(self, driver: DoorController) -> int:
        """Queue the controller's new events for the core, then acknowledge them on it."""
        confirmed = self.store.confirmed(self.device_id)
        after = 0
        if confirmed is not None and confirmed.event_generation == self.generation:
            after = confirmed.event_sequence
        events = await self.guarded("reading events", driver.read_events(after))
        if self._report_lost_events(driver):
            # the controller's log restarted: read it from its start
            events = await self.guarded("reading events", driver.read_events(0))
        if not events:
            return 0
        generation = self.generation or 0
        self.store.add_events(
            self.device_id,
            generation,
            [
                {
                    "kind": "controller_event",
                    "controller": self.device_id,
                    "generation": generation,
                    "sequence": e.sequence,
                    "event": e.kind.value,
                    "credential": str(e.credential),
                    "door": e.door,
                    "reason": e.reason.value if e.reason is not None else None,
                    "at": e.at.isoformat(),
                }
                for e in events
            ],
        )
        self.on_outbox()
        await self.guarded(
            "acknowledging events", driver.ack_events(max(e.sequence for e in events))
        )
        return len(events)


__all__ = ["AgentControllerWorker", "driver_list"]
