"""A core (this process, with the site hub) and two site agents as separate processes on a
private Mosquitto, with simulated Modbus controllers: a blocked ID06 card reaches every
site's controllers; an agent killed with SIGKILL misses a block, is restarted from its state
file, and the revocation lands and the exposure clears."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from gateway.demo.broker import PrivateMosquitto
from gateway.store import device_records as sync_store
from gateway.store import fact_repository as fact_store
from gateway.store import migrate
from gateway.store.database import Database
from simulators.controller import ControllerMemory, ControllerServer, ControllerSimulator
from tests.gateway.agent.facts import site_facts, tag
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


def start_core(config: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], BinaryIO]:
    """``lockgate run --sites --config CONFIG`` as a child process logging to ``log_path``."""
    log = log_path.open("wb")
    core = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--sites", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return core, log


async def test_lockgate_run_with_sites_serves_an_agent_process(
    broker: PrivateMosquitto, tmp_path: Path, agents: dict[str, AgentProcess]
) -> None:
    """The core as ``lockgate run --sites`` (a process too): its hub sends the agent its
    desired state and records the agent's confirmation in the core's store."""
    url = f"sqlite:///{tmp_path}/core.db"
    migrate.upgrade(url)
    db = Database(url)
    with db.session() as s:
        fact_store.put_many(s, site_facts(["s1"], 2))  # type: ignore[arg-type]
    memory = ControllerMemory(controller_id="s1", doors=4, capacity=2000)
    config = tmp_path / "core.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n\n[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        'client_id = "core-under-test"\n\n[sync]\ntick_s = 0.5\n'
    )
    core, log = start_core(config, tmp_path / "core.log")
    try:
        async with ControllerSimulator(
            ControllerServer(memory, transport="tcp"), control_port=None
        ) as sim:
            agent_cfg = agent_config(
                tmp_path / "south.toml", broker.host, broker.port, {"s1": sim.driver_options()}
            )
            agents["south"] = AgentProcess(
                "south", agent_cfg, tmp_path / "south.db", tmp_path / "south.log"
            )
            agents["south"].start()

            def confirmed() -> bool:
                with db.session(readonly=True) as s:
                    held = sync_store.get_controller(s, "s1")
                return held is not None and bool(held.revision)

            await until(confirmed, timeout=40, what="the core records the agent's confirmation")
            assert {e.credential for e in memory.active_entries} == {int(tag(0)), int(tag(1))}
            assert agents["south"].stop() == 0
    finally:
        core.send_signal(signal.SIGTERM)
        code = core.wait(20)
        log.close()
        db.dispose()
    assert code == 0, (tmp_path / "core.log").read_text()[-3000:]
    assert "site south is online" in (tmp_path / "core.log").read_text()
