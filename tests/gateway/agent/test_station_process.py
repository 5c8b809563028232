"""``lockgate agent`` as a separate process configured with a wall station (a real
pseudo-terminal of the simulated site): a key inserted there is programmed with the image the
core planned, and its audit trail reaches the core."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core import Submission
from gateway.demo.broker import PrivateMosquitto
from gateway.store import device_records as sync_store
from gateway.store import migrate
from simulators.site import DEFAULT_SITE, SimulatedSite, load_site
from tests import sample
from tests.gateway.agent.harness import core_gateway, until
from tests.gateway.agent.processes import AgentProcess, agent_config
from tests.gateway.agent.stationsite import WALL, today

pytestmark = pytest.mark.slow

SITE = "keys-process"


async def test_an_agent_process_programs_a_key_at_its_station(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    migrate.upgrade(sqlite_url)
    gateway, _, sink = core_gateway(sqlite_url, broker, resend_s=1.0)
    async with SimulatedSite(load_site(DEFAULT_SITE), control_port=None) as site:
        await gateway.start()
        agent: AgentProcess | None = None
        try:
            outcomes = await gateway.call(
                gateway.core.submit_many,
                [Submission(c, "tester") for c in sample.sample_commands(today())],
            )
            assert all(o.ok for o in outcomes)
            port = site.stations[WALL].pty_path
            config = agent_config(
                tmp_path / "agent.toml",
                broker.host,
                broker.port,
                {},
                stations={WALL: {"port": port, "baudrate": 115200}},
            )
            agent = AgentProcess(SITE, config, tmp_path / "agent.db", tmp_path / "agent.log")
            agent.start()
            # the key is in before the agent opens the station: the first event reports it
            site.insert(WALL, sample.KEY_BJORN_MAIN)

            def confirmed() -> sync_store.KeyConfirmed | None:
                with gateway.core.db.session(readonly=True) as s:
                    return sync_store.get_key(s, sample.KEY_BJORN_MAIN)

            await until(lambda: confirmed() is not None, 20, what="the key confirmed")
            held = confirmed()
            assert held is not None and held.station_id == WALL
            assert site.world.registry.get(sample.KEY_BJORN_MAIN).image.revision == held.revision
            site.remove(WALL)
            assert site.visit(sample.KEY_BJORN_MAIN, int(sample.CYL_SIGNAL[0]))["granted"]

            # its next visit brings the trail to the core
            site.insert(WALL, sample.KEY_BJORN_MAIN)
            await until(
                lambda: any(
                    k == "access_granted" and b["via_station"] == WALL for k, b in sink.events
                ),
                10,
                what="the audit trail at the core",
            )
            assert agent.stop() == 0
            agent = None
            log = (tmp_path / "agent.log").read_text()
            assert "serves 0 controllers and 1 stations" in log
        finally:
            if agent is not None:
                agent.kill()
            await gateway.stop()
