"""A running gateway (core + sync engine) on the demo site's simulators, for the sync tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.core import Core, Submission
from gateway.runtime import Gateway
from gateway.store import migrate
from gateway.store.database import Database
from gateway.sync.engine import SyncService
from simulators.site import DEFAULT_SITE, SimulatedSite, load_site
from tests import sample
from tests.gateway.running import gateway_of, sync_core


class RecordingSink:
    """Keeps every report of the sync engine (the MQTT and audit sinks are tested apart).

    A report is kept once the transaction that made it commits, and dropped if it rolls
    back: the real sinks write into the outbox in that transaction, so nothing of theirs
    leaves before the commit either, and a test that sees a report may read its effects."""

    _PENDING = "tests.recording_sink.pending"

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.devices: dict[str, tuple[bool, str]] = {}
        self.availability_history: list[tuple[str, bool]] = []
        self.states: list[str] = []

    def availability(self, session: Session, device_id: str, online: bool, reason: str) -> None:
        def keep() -> None:
            self.devices[device_id] = (online, reason)
            self.availability_history.append((device_id, online))

        self._on_commit(session, keep)

    def event(self, session: Session, kind: str, body: dict[str, Any]) -> None:
        self._on_commit(session, lambda: self.events.append((kind, body)))

    def credential_state(self, session: Session, core: Core, number: str) -> None:
        self._on_commit(session, lambda: self.states.append(number))

    def _on_commit(self, session: Session, keep: Callable[[], None]) -> None:
        pending: list[Callable[[], None]] | None = session.info.get(self._PENDING)
        if pending is None:
            pending = session.info[self._PENDING] = []
            if not sa_event.contains(session, "after_commit", self._committed):
                sa_event.listen(session, "after_commit", self._committed)
                sa_event.listen(session, "after_rollback", self._rolled_back)
        pending.append(keep)

    def _committed(self, session: Session) -> None:
        for keep in session.info.pop(self._PENDING, ()):
            keep()

    def _rolled_back(self, session: Session) -> None:
        session.info.pop(self._PENDING, None)

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


@dataclass
class RunningSite:
    site: SimulatedSite
    gateway: Gateway
    sync: SyncService
    sink: RecordingSink

    @property
    def core(self) -> Core:
        return self.gateway.core

    async def submit(self, *commands: Any) -> None:
        outcomes = await self.gateway.call(
            self.core.submit_many, [Submission(c, "tester") for c in commands]
        )
        for o in outcomes:
            assert o.ok, o.error

    async def until(
        self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)

    def online(self, device: str) -> bool:
        return self.sink.devices.get(device, (False, ""))[0]


@asynccontextmanager
async def running_site(
    db_url: str,
    today: date,
    *,
    site_file: Path = DEFAULT_SITE,
    serve_desk: bool = True,
    controller_settings: dict[str, Any] | None = None,
) -> AsyncIterator[RunningSite]:
    migrate.upgrade(db_url)
    spec = load_site(site_file)
    async with SimulatedSite(spec, control_port=None) as site:
        stations = site.station_devices()
        if serve_desk:
            for s in stations:
                s["operated"] = False
        settings = Settings.model_validate(
            {
                "database": {"url": db_url},
                "mqtt": {"enabled": False},
                "sync": {
                    "retry_initial_s": 0.05,
                    "retry_max_s": 0.5,
                    "device_timeout_s": 5.0,
                    "tick_s": 0.2,
                },
                "stations": stations,
                "controllers": [c | (controller_settings or {}) for c in site.controller_devices()],
            }
        )
        core, _ = sync_core(Database(db_url), settings)
        sink = RecordingSink()
        sync = SyncService(settings, sink)
        gateway = gateway_of(settings, core, services=[sync])
        await gateway.start()
        try:
            running = RunningSite(site, gateway, sync, sink)
            await running.submit(*sample.sample_commands(today))
            yield running
        finally:
            await gateway.stop()
