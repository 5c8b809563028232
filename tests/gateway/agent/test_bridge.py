"""deploy/mosquitto/bridge-site.conf on real brokers: a site Mosquitto bridged to the
central one (with the deployed ACL, the site's account) carries the site's topics both ways;
an agent on the site broker and the core's hub on the central broker deliver a revocation,
and a revocation made while the bridge is down lands when it is back; a key at the site's
station is served through the bridge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.agent import Agent
from gateway.demo.broker import DeployedMosquitto
from tests import sample
from tests.gateway.agent.brokers import PASSWORDS, SiteBroker
from tests.gateway.agent.facts import tag
from tests.gateway.agent.harness import agent_settings, running_core, state_file, until
from tests.gateway.agent.stationsite import station_site
from tests.gateway.agent.test_acl import deployed

__all__ = ["deployed"]

pytestmark = pytest.mark.slow


@pytest.fixture
def site_broker(deployed: DeployedMosquitto) -> Iterator[SiteBroker]:
    b = SiteBroker(deployed, "north")
    b.start()
    yield b
    b.cleanup()


async def test_an_agent_behind_a_bridged_site_broker(
    deployed: DeployedMosquitto, site_broker: SiteBroker, tmp_path: Path
) -> None:
    hub_account = ("lockgate-sites", PASSWORDS["lockgate-sites"])
    db_url = f"sqlite:///{tmp_path}/core.db"
    async with running_core(db_url, deployed, ["n1"], account=hub_account) as run:
        settings = agent_settings(site_broker, {"n1": run.simulators["n1"].driver_options()})
        async with Agent(settings, "north", state_file(tmp_path, "north"), resend_s=1.0):
            await until(lambda: run.all_confirmed(["n1"]), timeout=30, what="the first sync")
            await run.block(0)
            await until(lambda: not run.holds("n1", tag(0)), what="the revocation")
            await until(lambda: run.settled(tag(0)), what="the confirmation")

            # the WAN goes: the central broker is away; a card is blocked meanwhile
            deployed.stop()
            await run.block(1)
            assert run.holds("n1", tag(1))
            deployed.start()
            await until(lambda: not run.holds("n1", tag(1)), timeout=40, what="after the WAN")
            await until(lambda: run.settled(tag(1)), timeout=20, what="confirmed")


async def test_a_key_at_a_station_behind_a_bridged_site_broker(
    deployed: DeployedMosquitto, site_broker: SiteBroker, tmp_path: Path
) -> None:
    async with station_site(
        f"sqlite:///{tmp_path}/core.db",
        deployed,
        tmp_path,
        "north",
        hub_account=("lockgate-sites", PASSWORDS["lockgate-sites"]),
        agent_broker=site_broker,
    ) as run:
        # the bridge comes up on its own schedule: wait until the hub hears the site
        await until(lambda: run.hub is not None and "north" in run.hub.sites, 30, what="bridge")
        await until(lambda: "wall-hallsberg" in run.hub.keys.station_owner if run.hub else False)
        visit = await run.program(sample.KEY_CECILIA)
        assert (visit.outcome, visit.answered) == ("written", True)
        await until(lambda: run.agent.store.waiting() == 0, what="the confirmation acknowledged")
        assert [b["key"] for b in run.events("key_programmed")] == [sample.KEY_CECILIA]
