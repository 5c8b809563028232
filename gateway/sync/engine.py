"""The sync engine as a gateway service: one worker per configured device, woken by every
committed change. The core it serves has the planner and the exposure loader
(:mod:`gateway.compose` builds it so)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from drivers.base import ControllerSettings, DeviceConfig, DoorController, DoorMode, KeyStation
from drivers.registry import load_door_controller, load_key_station
from gateway.config import ControllerDeviceSettings, DeviceSettings, Settings
from gateway.rules.engine import Changes
from gateway.sync.controller import ControllerWorker
from gateway.sync.events import SyncSink
from gateway.sync.station import StationWorker
from gateway.sync.worker import CoreRunner, WorkerTiming

log = logging.getLogger(__name__)


def _device(d: DeviceSettings) -> DeviceConfig:
    return DeviceConfig(device_id=d.id, driver=d.driver, options=dict(d.options))


def controller_settings(c: ControllerDeviceSettings) -> ControllerSettings:
    """The settings a controller's configuration asks it to keep."""
    return ControllerSettings(
        pulse_seconds=c.pulse_seconds,
        held_open_seconds=c.held_open_seconds,
        door_modes=tuple((door, DoorMode(mode)) for door, mode in sorted(c.door_modes.items())),
    )


def worker_timing(settings: Settings) -> WorkerTiming:
    sync = settings.sync
    return WorkerTiming(
        retry_initial_s=sync.retry_initial_s,
        retry_max_s=sync.retry_max_s,
        timeout_s=sync.device_timeout_s,
        poll_s=sync.tick_s,
    )


class SyncService:
    """Starts a :class:`ControllerWorker` per controller and a :class:`StationWorker` per
    station that is not operated at a desk (those run under ``lockgate station``)."""

    name = "sync"

    def __init__(
        self,
        settings: Settings,
        sink: SyncSink,
        *,
        controller_factory: Callable[[DeviceConfig], DoorController] = load_door_controller,
        station_factory: Callable[[DeviceConfig], KeyStation] = load_key_station,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.controller_factory = controller_factory
        self.station_factory = station_factory
        self.controllers: dict[str, ControllerWorker] = {}
        self.stations: dict[str, StationWorker] = {}

    async def start(self, gateway: CoreRunner) -> None:
        timing = worker_timing(self.settings)
        for c in self.settings.controllers:
            own = timing
            if c.device_timeout_s is not None:
                own = replace(timing, timeout_s=c.device_timeout_s)
            self.controllers[c.id] = ControllerWorker(
                gateway,
                c.id,
                partial(self.controller_factory, _device(c)),
                self.sink,
                timing=own,
                settings=controller_settings(c),
                clock_tolerance_s=c.clock_tolerance_s,
                write_timeout_s=c.write_timeout_s,
            )
        for st in self.settings.stations:
            if not st.operated:
                self.stations[st.id] = StationWorker(
                    gateway,
                    st.id,
                    partial(self.station_factory, _device(st)),
                    self.sink,
                    timing=timing,
                )
        observe = getattr(gateway, "observe", None)
        if observe is not None:
            observe(self.on_changes)
        for w in [*self.controllers.values(), *self.stations.values()]:
            await w.start()
        log.info(
            "sync engine serves %d controllers and %d stations",
            len(self.controllers),
            len(self.stations),
        )

    def on_changes(self, changes: Changes) -> None:
        """Wake the controllers whose allow-list changed; revocations are served first
        because each controller's worker writes its whole desired list at once."""
        numbers = set(changes.credentials)
        for cid in changes.controllers:
            worker = self.controllers.get(cid)
            if worker is not None:
                worker.note_changed(numbers)

    async def stop(self) -> None:
        for w in [*self.stations.values(), *self.controllers.values()]:
            await w.stop()
