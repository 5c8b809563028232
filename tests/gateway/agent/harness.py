"""A core with the site hub on a private broker, and simulated controllers for the agents."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.agent import SiteHub
from gateway.commands import model as m
from gateway.config import Settings
from gateway.core import Core, Submission
from gateway.demo.broker import PrivateMosquitto
from gateway.reports.exposure import exposure
from gateway.runtime import Gateway
from gateway.store import device_records as sync_store
from gateway.store import fact_repository as fact_store
from gateway.store import migrate
from gateway.store.database import Database
from gateway.sync.engine import SyncService
from gateway.sync.events import confirmed_revision
from simulators.controller import ControllerMemory, ControllerServer, ControllerSimulator
from tests.gateway.agent.facts import card, site_facts
from tests.gateway.running import gateway_of, sync_core
from tests.gateway.sync.site import RecordingSink


def mqtt_of(broker: PrivateMosquitto, **extra: Any) -> dict[str, Any]:
    return {"host": broker.host, "port": broker.port, "keepalive_s": 5, **extra}


def agent_settings(
    broker: PrivateMosquitto, controllers: Mapping[str, dict[str, Any]], **mqtt: Any
) -> Settings:
    """The configuration of an agent serving ``controllers`` (id -> driver options)."""
    return Settings.model_validate(
        {
            "mqtt": mqtt_of(broker, **mqtt),
            "sync": {"retry_initial_s": 0.1, "retry_max_s": 1.0, "tick_s": 0.5},
            "controllers": [
                {"id": cid, "driver": "modbus-door", "options": options}
                for cid, options in controllers.items()
            ],
        }
    )


@dataclass
class RunningCore:
    gateway: Gateway
    hub: SiteHub
    sink: RecordingSink
    simulators: dict[str, ControllerSimulator] = field(default_factory=dict)

    @property
    def core(self) -> Core:
        return self.gateway.core

    async def block(self, person: int) -> float:
        """Block person ``person``'s ID06 card; returns when the core accepted it."""
        outcome = await self.gateway.call(
            self.core.submit, Submission(m.BlockId06(card_number=card(person)), "tester")
        )
        assert outcome.ok, outcome.error
        return time.monotonic()

    def _all_confirmed(self, controllers: list[str]) -> bool:
        with self.core.db.session(readonly=True) as s:
            for cid in controllers:
                held = sync_store.get_controller(s, cid)
                if held is None or held.revision != self.core.engine.controller_revision(cid):
                    return False
        return True

    async def all_confirmed(self, controllers: list[str]) -> bool:
        return await self.gateway.call(self._all_confirmed, controllers)

    def _pending(self, number: str) -> bool:
        with self.core.db.session(readonly=True) as s:
            return confirmed_revision(s, self.core, number) is None

    async def pending(self, number: str) -> bool:
        """Whether credential ``number``'s state is still waiting for a device (exposure)."""
        return await self.gateway.call(self._pending, number)

    async def settled(self, number: str) -> bool:
        """Whether every device confirmed credential ``number``'s desired state."""
        return not await self.pending(number)

    def _exposed(self, number: str) -> set[str]:
        with self.core.db.session(readonly=True) as s:
            rows = exposure(s, self.core.engine, self.core.clock())
        return {r.lock for r in rows if r.credential == number}

    async def exposed(self, number: str) -> set[str]:
        """The locks the exposure report says credential ``number`` can still open."""
        return await self.gateway.call(self._exposed, number)

    def holds(self, controller: str, number: str) -> bool:
        memory = self.simulators[controller].memory
        return any(e.credential == int(number) for e in memory.active_entries)


async def until(
    predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def core_gateway(
    db_url: str,
    broker: PrivateMosquitto,
    *,
    resend_s: float = 2.0,
    sites: Mapping[str, list[str]] | None = None,
    account: tuple[str, str] | None = None,
    part_bytes: int = 262144,
    mqtt: Mapping[str, Any] | None = None,
) -> tuple[Gateway, SiteHub, RecordingSink]:
    """A core gateway (not started) on ``db_url`` with the site hub and a recording sink
    (``mqtt``: more ``[mqtt]`` settings, e.g. TLS)."""
    settings = Settings.model_validate(
        {
            "database": {"url": db_url},
            "mqtt": mqtt_of(broker, **(mqtt or {})),
            "sync": {"tick_s": 0.5},
        }
    )
    core, _ = sync_core(Database(db_url), settings)
    sink = RecordingSink()
    hub = SiteHub(
        settings.mqtt,
        sink,
        resend_s=resend_s,
        part_bytes=part_bytes,
        sites=sites,
        username=account[0] if account else None,
        password=account[1] if account else None,
    )
    return gateway_of(settings, core, services=[SyncService(settings, sink), hub]), hub, sink


@asynccontextmanager
async def running_core(
    db_url: str,
    broker: PrivateMosquitto,
    controllers: list[str],
    *,
    people: int = 4,
    resend_s: float = 2.0,
    sites: Mapping[str, list[str]] | None = None,
    account: tuple[str, str] | None = None,
    facts: bool = True,
    capacity: int = 2000,
    part_bytes: int = 262144,
    mqtt: Mapping[str, Any] | None = None,
) -> AsyncIterator[RunningCore]:
    """The core (no local devices) with the site hub, the facts of ``controllers``, and one
    simulated controller per id (not served by anyone until an agent is started)."""
    migrate.upgrade(db_url)
    db = Database(db_url)
    if facts:
        with db.session() as s:
            fact_store.put_many(s, site_facts(controllers, people))  # type: ignore[arg-type]
    gateway, hub, sink = core_gateway(
        db_url,
        broker,
        resend_s=resend_s,
        sites=sites,
        account=account,
        part_bytes=part_bytes,
        mqtt=mqtt,
    )
    async with AsyncExitStack() as stack:
        sims: dict[str, ControllerSimulator] = {}
        for cid in controllers:
            memory = ControllerMemory(controller_id=cid, doors=4, capacity=capacity)
            sims[cid] = await stack.enter_async_context(
                ControllerSimulator(ControllerServer(memory, transport="tcp"), control_port=None)
            )
        await gateway.start()
        try:
            yield RunningCore(gateway, hub, sink, sims)
        finally:
            await gateway.stop()


def state_file(tmp: Path, site: str) -> str:
    return str(tmp / f"agent-{site}.db")
