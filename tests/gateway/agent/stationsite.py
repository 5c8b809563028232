"""A core with the site hub on a private broker, the demo site's simulated stations (real
pseudo-terminals) and an agent serving the wall station, for the key-station tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.agent import Agent, SiteHub
from gateway.agent.stations import AgentStationWorker, StationVisit
from gateway.config import Settings
from gateway.core import Core, Submission
from gateway.demo.broker import PrivateMosquitto
from gateway.domain import DEFAULT_TIMEZONE
from gateway.runtime import Gateway
from gateway.store import migrate
from simulators.site import DEFAULT_SITE, SimulatedSite, load_site
from tests import sample
from tests.gateway.agent.harness import core_gateway, mqtt_of, state_file, until
from tests.gateway.sync.site import RecordingSink

WALL = "wall-hallsberg"


def today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()


@dataclass
class StationSite:
    db_url: str
    broker: PrivateMosquitto
    site: SimulatedSite
    agent: Agent
    gateway: Gateway | None = None
    hub: SiteHub | None = None
    sink: RecordingSink | None = None
    hub_account: tuple[str, str] | None = None

    @property
    def core(self) -> Core:
        assert self.gateway is not None
        return self.gateway.core

    @property
    def station(self) -> AgentStationWorker:
        return self.agent.stations[WALL]

    async def start_core(self) -> None:
        """Start a core with the site hub on the store (again after :meth:`stop_core`)."""
        self.gateway, self.hub, self.sink = core_gateway(
            self.db_url, self.broker, resend_s=1.0, account=self.hub_account
        )
        await self.gateway.start()

    async def stop_core(self) -> None:
        assert self.gateway is not None
        await self.gateway.stop()
        self.gateway = self.hub = None

    async def submit(self, *commands: Any) -> None:
        assert self.gateway is not None
        outcomes = await self.gateway.call(
            self.core.submit_many, [Submission(c, "tester") for c in commands]
        )
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]

    async def program(self, serial: str, timeout: float = 10.0) -> StationVisit:
        """Insert key ``serial`` at the wall station, wait for the agent's visit to end, and
        take the key out."""
        before = len(self.station.visits)
        self.site.insert(WALL, serial)
        await until(lambda: len(self.station.visits) > before, timeout, what=f"key {serial} served")
        if self.site.stations[WALL].device.key is not None:
            self.site.remove(WALL)
        return self.station.visits[-1]

    def events(self, kind: str) -> list[dict[str, Any]]:
        assert self.sink is not None
        return [b for k, b in self.sink.events if k == kind]


@asynccontextmanager
async def station_site(
    db_url: str,
    broker: PrivateMosquitto,
    tmp: Path,
    site_id: str,
    *,
    key_wait_s: float = 5.0,
    hub_account: tuple[str, str] | None = None,
    agent_password: str | None = None,
    agent_broker: PrivateMosquitto | None = None,
) -> AsyncIterator[StationSite]:
    """The core (started, with the sample story), the demo site's simulators, and an agent of
    site ``site_id`` serving the wall station, connected, its station open. With
    ``agent_password`` the agent logs in as ``site_id``; the hub with ``hub_account``. The
    agent uses ``agent_broker`` (a site broker bridged to ``broker``) when given."""
    migrate.upgrade(db_url)
    async with SimulatedSite(load_site(DEFAULT_SITE), control_port=None) as site:
        stations = [s | {"operated": s["id"] != WALL} for s in site.station_devices()]
        settings = Settings.model_validate(
            {
                "mqtt": mqtt_of(
                    agent_broker or broker,
                    **({"username": site_id, "password": agent_password} if agent_password else {}),
                ),
                "sync": {
                    "retry_initial_s": 0.1,
                    "retry_max_s": 1.0,
                    "tick_s": 0.5,
                    "device_timeout_s": 5.0,
                },
                "stations": stations,
            }
        )
        agent = Agent(
            settings, site_id, state_file(tmp, site_id), resend_s=1.0, key_wait_s=key_wait_s
        )
        run = StationSite(db_url, broker, site, agent, hub_account=hub_account)
        await run.start_core()
        await run.submit(*sample.sample_commands(today()))
        await agent.start()
        try:
            await until(agent.connected.is_set, what="the agent connected")
            await until(lambda: run.station.online is True, what="the station online")
            yield run
        finally:
            await agent.stop()
            if run.gateway is not None:
                await run.stop_core()
