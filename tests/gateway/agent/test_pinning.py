"""Sites pinned to their controllers in the configuration (``[hub.sites]``), as ``lockgate run
--sites`` builds the hub: a site is served only its pinned controllers, whichever agent names
a controller first; reports about a controller pinned elsewhere are not accepted."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from gateway.agent import Agent, SiteHub, site_hub
from gateway.compose import build_gateway
from gateway.config import ConfigError, load_settings
from gateway.demo.broker import PrivateMosquitto
from gateway.store import fact_repository as fact_store
from gateway.store import migrate
from gateway.store.database import Database
from simulators.controller import ControllerMemory, ControllerServer, ControllerSimulator
from tests.gateway.agent.facts import site_facts, tag
from tests.gateway.agent.harness import RunningCore, agent_settings, state_file, until
from tests.gateway.sync.site import RecordingSink

PINS = {"north": ["n1"], "south": ["s1", "n2"]}
"""n2 is south's, though north's agent names it too (and first)."""


def config_file(tmp: Path, url: str, broker: PrivateMosquitto) -> Path:
    path = tmp / "core.toml"
    pins = "\n".join(f"{site} = {json.dumps(ids)}" for site, ids in PINS.items())
    path.write_text(
        f'[database]\nurl = "{url}"\n\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nkeepalive_s = 5\n'
        'client_id = "pinning-core"\n\n'
        "[sync]\ntick_s = 0.5\n\n"
        "[web]\nenabled = false\n\n"
        f"[hub.sites]\n{pins}\n"
    )
    return path


@asynccontextmanager
async def core_from_config(
    url: str, broker: PrivateMosquitto, tmp: Path, controllers: list[str]
) -> AsyncIterator[RunningCore]:
    """The gateway ``lockgate run --sites --config core.toml`` runs, and the simulators."""
    settings = load_settings(config_file(tmp, url, broker))
    migrate.upgrade(url)
    with Database(url).session() as s:
        fact_store.put_many(s, site_facts(controllers, 3))  # type: ignore[arg-type]
    gateway = build_gateway(settings, extra_services=[site_hub], upgrade=False)
    hub = gateway.services[-1]
    assert isinstance(hub, SiteHub)
    async with AsyncExitStack() as stack:
        sims: dict[str, ControllerSimulator] = {}
        for cid in controllers:
            memory = ControllerMemory(controller_id=cid, doors=4, capacity=100)
            sims[cid] = await stack.enter_async_context(
                ControllerSimulator(ControllerServer(memory, transport="tcp"), control_port=None)
            )
        await gateway.start()
        try:
            yield RunningCore(gateway, hub, RecordingSink(), sims)
        finally:
            await gateway.stop()


def _agent(
    run: RunningCore, broker: PrivateMosquitto, site: str, ids: list[str], tmp: Path
) -> Agent:
    settings = agent_settings(broker, {c: run.simulators[c].driver_options() for c in ids})
    return Agent(settings, site, state_file(tmp, site), resend_s=1.0)


async def test_pinned_sites_are_served_only_their_controllers(
    sqlite_url: str,
    broker: PrivateMosquitto,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.agent")
    async with core_from_config(sqlite_url, broker, tmp_path, ["n1", "n2", "s1"]) as run:
        assert run.hub.allowed == {"north": {"n1"}, "south": {"s1", "n2"}}
        async with _agent(run, broker, "north", ["n1", "n2"], tmp_path) as north:
            await until(lambda: run.all_confirmed(["n1"]), what="n1 synced through north")
            assert run.hub.sites["north"].controllers == ["n1"]
            assert "site north names controller n2, pinned to site south" in caplog.text
            # north is sent nothing for n2, and its reports about n2 are not accepted
            assert north.store.desired("n2") is None
            await until(
                lambda: [p.payload["controller"] for p in north.store.pending()] == ["n2"],
                what="north's own reports acknowledged",
            )
            assert not await run.all_confirmed(["n2"])
            async with _agent(run, broker, "south", ["s1", "n2"], tmp_path):
                await until(lambda: run.all_confirmed(["n1", "n2", "s1"]), what="every sync")
                assert run.hub.sites["south"].controllers == ["s1", "n2"]
                assert run.holds("n2", tag(0))
            assert [p.payload["controller"] for p in north.store.pending()] == ["n2"]


def test_a_controller_pinned_to_two_sites_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[hub.sites]\nnorth = ["n1"]\nsouth = ["n1"]\n')
    with pytest.raises(ConfigError, match=r"hub\.sites: .*n1.* pinned to north and south"):
        load_settings(path)
    path.write_text('[hub.sites]\n"bad site" = ["n1"]\n')
    with pytest.raises(ConfigError, match=r"hub\.sites: .*bad site"):
        load_settings(path)


def test_the_commented_example_of_deploy_is_valid(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[3] / "deploy" / "lockgate.toml").read_text()
    head, example = text.split("# [hub]\n", 1)
    lines = ["[hub]", *(line.removeprefix("#").strip() for line in example.splitlines())]
    path = tmp_path / "example.toml"
    path.write_text(head + "\n".join(lines) + "\n")
    settings = load_settings(path)
    assert settings.hub.sites["depot-orebro"] == ["orebro-main"]
    assert settings.hub.part_bytes == 262144
