"""The key desk: an operated desk station's visits, decided by an operator in the console.

A :class:`KeyDesk` is given to the desk station's :class:`~gateway.sync.station.StationWorker`
as its ``decide``, ``on_progress`` and ``on_visit`` callbacks. When a key that needs writing
is inserted, the worker waits in :meth:`KeyDesk.decide` until an operator confirms (or
declines) in the console; the console shows the inserted key, its holder, what will be
programmed and why, the progress of the write, and the verified result."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.base import WriteProgress
from gateway.sync.station import KeyVisit


@dataclass
class DeskState:
    """What one desk station shows now."""

    station_id: str
    visit: KeyVisit | None = None
    waiting: asyncio.Future[bool] | None = None
    progress: float | None = None
    last: KeyVisit | None = None
    version: int = 0


@dataclass
class KeyDesk:
    """The desk stations the console serves, by station id."""

    stations: dict[str, DeskState] = field(default_factory=dict)
    listeners: list[Callable[[], None]] = field(default_factory=list)

    def station(self, station_id: str) -> DeskState:
        return self.stations.setdefault(station_id, DeskState(station_id))

    def _changed(self, state: DeskState) -> None:
        state.version += 1
        for listener in list(self.listeners):
            listener()

    async def decide(self, visit: KeyVisit) -> bool:
        """The worker's ``decide``: wait for the operator's answer."""
        state = self.station(visit.station_id)
        state.visit, state.progress = visit, None
        state.waiting = asyncio.get_running_loop().create_future()
        self._changed(state)
        try:
            return await state.waiting
        finally:
            state.waiting = None
            self._changed(state)

    def answer(self, station_id: str, serial: str, confirm: bool) -> bool:
        """An operator's answer for the key ``serial`` waiting at ``station_id`` (the caller
        records who answered in the audit log); False when that key is no longer waiting
        there."""
        state = self.stations.get(station_id)
        if (
            state is None
            or state.waiting is None
            or state.waiting.done()
            or state.visit is None
            or state.visit.serial != serial
        ):
            return False
        state.progress = 0.0 if confirm else None
        state.waiting.set_result(confirm)
        return True

    def on_progress(self, visit: KeyVisit, progress: WriteProgress) -> None:
        state = self.station(visit.station_id)
        state.progress = progress.done / progress.total if progress.total else 1.0
        self._changed(state)

    def on_visit(self, visit: KeyVisit) -> None:
        state = self.station(visit.station_id)
        state.last, state.visit, state.progress = visit, None, None
        self._changed(state)


__all__ = ["DeskState", "KeyDesk"]
