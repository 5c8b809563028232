"""A core (this process, with the site hub) and two site agents as separate processes on a
private Mosquitto, with simulated Modbus controllers: a blocked ID06 card reaches every
site's controllers; an agent killed with SIGKILL misses a block, is restarted from its state
file, and the revocation lands and the exposure clears."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.demo.broker import PrivateMosquitto
from tests.gateway.agent.facts import tag
from tests.gateway.agent.harness import RunningCore, running_core, until
from tests.gateway.agent.processes import AgentProcess, agent_config

SITES = {"north": ["n1", "n2"], "south": ["s1"]}
ALL = [c for ids in SITES.values() for c in ids]

pytestmark = pytest.mark.slow


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[dict[str, AgentProcess]]:
    started: dict[str, AgentProcess] = {}
    yield started
    for a in started.values():
        a.kill()


def spawn(run: RunningCore, broker: PrivateMosquitto, tmp: Path, site: str) -> AgentProcess:
    config = agent_config(
        tmp / f"{site}.toml",
        broker.host,
        broker.port,
        {cid: run.simulators[cid].driver_options() for cid in SITES[site]},
    )
    agent = AgentProcess(site, config, tmp / f"{site}.db", tmp / f"{site}.log")
    agent.start()
    return agent


async def test_revocations_reach_agent_processes_and_a_killed_agent_catches_up(
    sqlite_url: str,
    broker: PrivateMosquitto,
    tmp_path: Path,
    agents: dict[str, AgentProcess],
) -> None:
    async with running_core(sqlite_url, broker, ALL) as run:
        for site in SITES:
            agents[site] = spawn(run, broker, tmp_path, site)
        await until(lambda: run.all_confirmed(ALL), timeout=30, what="the first sync")
        assert all(run.holds(c, tag(0)) for c in ALL)

        await run.block(0)
        await until(lambda: not any(run.holds(c, tag(0)) for c in ALL), what="the revocation")
        await until(lambda: run.settled(tag(0)), what="every controller confirmed")
        assert await run.exposed(tag(0)) == set()

        # the south agent dies hard; a card is blocked meanwhile
        agents["south"].kill()
        await run.block(1)
        await until(lambda: not any(run.holds(c, tag(1)) for c in SITES["north"]), what="north")
        await until(lambda: run.all_confirmed(SITES["north"]), what="north confirmed")
        assert run.holds("s1", tag(1)), "nobody serves s1 while its agent is down"
        assert await run.exposed(tag(1)) == {"door:s1/1", "door:s1/2"}

        # restarted from its state file, it catches up: the revocation lands, exposure clears
        agents["south"] = spawn(run, broker, tmp_path, "south")
        await until(lambda: not run.holds("s1", tag(1)), timeout=30, what="s1 catches up")
        await until(lambda: run.settled(tag(1)), what="s1 confirmed")
        assert await run.exposed(tag(1)) == set()

        for site in SITES:
            assert agents[site].stop() == 0, (tmp_path / f"{site}.log").read_text()[-2000:]
