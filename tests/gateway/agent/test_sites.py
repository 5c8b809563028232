"""A core with the site hub and two site agents (in this process) on a private Mosquitto
with simulated controllers: desired state flows down, confirmations and events up; a
revocation reaches every site's controllers; an agent that was away catches up; an agent
cut from the broker keeps serving its controllers and sends what it collected later."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from gateway.agent import Agent
from gateway.bridge.sitepayloads import ControllerDoc, SiteDesired, dump
from gateway.commands import model as m
from gateway.config import Settings
from gateway.core import Submission
from gateway.demo.broker import PrivateMosquitto
from gateway.store import device_records as sync_store
from gateway.store.database import Database
from tests.gateway.agent.facts import card, tag
from tests.gateway.agent.harness import (
    RunningCore,
    agent_settings,
    core_gateway,
    running_core,
    state_file,
    until,
)
from tests.gateway.running import sync_core

NORTH = ["n1", "n2"]
SOUTH = ["s1"]


def _agent(run: object, broker: PrivateMosquitto, site: str, ids: list[str], tmp: Path) -> Agent:
    sims = run.simulators  # type: ignore[attr-defined]
    settings = agent_settings(broker, {cid: sims[cid].driver_options() for cid in ids})
    return Agent(settings, site, state_file(tmp, site), resend_s=1.0)


async def test_a_revocation_reaches_every_site_and_an_agent_away_catches_up(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with running_core(sqlite_url, broker, NORTH + SOUTH) as run:
        north = _agent(run, broker, "north", NORTH, tmp_path)
        south = _agent(run, broker, "south", SOUTH, tmp_path)
        async with north:
            await south.start()
            try:
                await until(lambda: run.all_confirmed(NORTH + SOUTH), what="the first sync")
                assert all(run.holds(cid, tag(0)) for cid in NORTH + SOUTH)
                assert run.hub.sites["north"].controllers == NORTH

                await run.block(0)
                await until(
                    lambda: not any(run.holds(c, tag(0)) for c in NORTH + SOUTH),
                    what="tag 0 off every controller",
                )
                await until(lambda: run.all_confirmed(NORTH + SOUTH), what="confirmations")
                confirmed = {
                    b["device"]
                    for k, b in run.sink.events
                    if k == "revocation_confirmed" and b["credential"] == tag(0)
                }
                assert confirmed == {"n1", "n2", "s1"}
                assert not await run.pending(tag(0))
            finally:
                await south.stop()

            # south is away: a block lands on north only, and stays pending (exposed)
            await run.block(1)
            await until(lambda: not any(run.holds(c, tag(1)) for c in NORTH), what="north")
            await until(lambda: run.all_confirmed(NORTH), what="north confirmed")
            assert run.holds("s1", tag(1))
            assert await run.pending(tag(1))
            assert await run.exposed(tag(1)) == {"door:s1/1", "door:s1/2"}

            # south comes back with its state file: it catches up, the exposure clears
            south = _agent(run, broker, "south", SOUTH, tmp_path)
            async with south:
                await until(lambda: not run.holds("s1", tag(1)), what="s1 catches up")
                await until(lambda: run.all_confirmed(SOUTH), what="s1 confirmed")
                await until(lambda: run.settled(tag(1)), what="the state confirmed")
                assert await run.exposed(tag(1)) == set()
                assert ("revocation_confirmed", {"credential": tag(1), "device": "s1"}) in (
                    run.sink.events
                )


async def test_an_agent_cut_from_the_broker_keeps_serving_and_sends_later(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with (
        running_core(sqlite_url, broker, SOUTH) as run,
        _agent(run, broker, "south", SOUTH, tmp_path) as south,
    ):
        await until(lambda: run.all_confirmed(SOUTH), what="the first sync")
        broker.stop()
        try:
            await until(lambda: not south.connected.is_set(), what="the link down")
            # the controller still decides at the door from the list it holds ...
            assert (await run.simulators["s1"].present(int(tag(2)), 1))["granted"] is True
            # ... and the agent collects the event for later
            await until(lambda: south.store.waiting() > 0, what="the event queued")
        finally:
            broker.start()
        await until(south.connected.is_set, what="the link back")
        await until(
            lambda: any(
                k == "access_granted" and b["credential"] == tag(2) for k, b in run.sink.events
            ),
            what="the event delivered",
        )
        await until(lambda: south.store.waiting() == 0, what="the outbox acknowledged")
        # sent at least once, applied once
        granted = [
            b for k, b in run.sink.events if k == "access_granted" and b["credential"] == tag(2)
        ]
        assert len(granted) == 1


async def test_an_agent_refuses_bad_documents_over_mqtt_and_keeps_its_state(
    sqlite_url: str,
    broker: PrivateMosquitto,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.agent")
    async with (
        running_core(sqlite_url, broker, SOUTH, resend_s=30.0) as run,
        _agent(run, broker, "south", SOUTH, tmp_path) as south,
    ):
        await until(lambda: run.all_confirmed(SOUTH), what="the first sync")
        held = south.store.revision()
        assert held is not None
        stale = SiteDesired(
            site="south",
            revision=held,
            controllers={"s1": ControllerDoc(revision="forged", entries=[])},
            issued_at=datetime.now(UTC),
        )
        topic = "lockgate/v1/site/south/desired"
        async with aiomqtt.Client(broker.host, broker.port, identifier="forger") as forger:
            await forger.publish(topic, b'{"site": "south", "revision": "x"}', qos=1)
            await forger.publish(topic, dump(stale), qos=1)
        await until(lambda: len(south.refusals) >= 2, what="two refusals")
        assert south.refusals[0].startswith("malformed document: revision")
        assert south.refusals[1] == f"revision: {held} is not newer than the held {held}"
        assert "refused a desired document" in caplog.text
        desired = south.store.desired("s1")
        assert desired is not None and desired.revision != "forged"
        assert run.holds("s1", tag(0))
        # the core answers a refusal with a full document, which the agent accepts
        await until(lambda: (south.store.revision() or 0) > held, what="a full document")
        await until(lambda: run.all_confirmed(SOUTH), what="still confirmed")


async def test_a_core_restarted_sets_a_waiting_agent_right(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """The agent stays up while the core is away; a card is blocked by another process
    meanwhile (no hub running); the restarted core's hub hears the agent's retained state
    and sends it a full document."""
    async with (
        running_core(sqlite_url, broker, SOUTH) as run,
        _agent(run, broker, "south", SOUTH, tmp_path) as south,
    ):
        await until(lambda: run.all_confirmed(SOUTH), what="the first sync")
        await run.gateway.stop()
        held = south.store.revision()
        # another process changes the store while no core runs
        core, _ = sync_core(Database(sqlite_url), Settings())
        core.load()
        outcome = core.submit(Submission(m.BlockId06(card_number=card(3)), "tester"))
        assert outcome.ok, outcome.error
        core.db.dispose()
        assert run.holds("s1", tag(3))

        gateway, hub, sink = core_gateway(sqlite_url, broker)
        await gateway.start()
        try:
            again = RunningCore(gateway, hub, sink, run.simulators)
            await until(lambda: not again.holds("s1", tag(3)), what="the block lands")
            await until(lambda: again.settled(tag(3)), what="confirmed to the new core")
            assert (south.store.revision() or 0) > (held or 0)
        finally:
            await gateway.stop()


async def test_an_agent_restores_a_controller_that_lost_its_memory(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """Power loss: the controller's generation changes; the agent writes the allow-list, its
    settings and its clock again without the core, and reports the new confirmation."""
    async with running_core(sqlite_url, broker, SOUTH) as run:
        sim = run.simulators["s1"]
        settings = Settings.model_validate(
            agent_settings(broker, {"s1": sim.driver_options()}).model_dump()
            | {
                "controllers": [
                    {
                        "id": "s1",
                        "driver": "modbus-door",
                        "options": sim.driver_options(),
                        "pulse_seconds": 7,
                    }
                ]
            }
        )
        async with Agent(settings, "south", state_file(tmp_path, "south")) as south:
            worker = south.workers["s1"]
            await until(lambda: run.all_confirmed(SOUTH), what="the first sync")
            await until(lambda: sim.memory.pulse_seconds == 7, what="the settings")
            writes, sets = worker.writes, worker.clock_sets
            generation = (await sim.power_loss())["generation"]
            await sim.set_time("2020-01-01T00:00:00+00:00")
            assert not run.holds("s1", tag(0))
            await until(lambda: run.holds("s1", tag(0)), what="the list written again")
            await until(lambda: sim.memory.pulse_seconds == 7, what="the settings again")
            await until(lambda: worker.clock_sets > sets, what="the clock set")
            assert worker.writes == writes + 1
            assert worker.generation == generation

            def confirmed_generation() -> bool:
                with run.core.db.session(readonly=True) as s:
                    held = sync_store.get_controller(s, "s1")
                return held is not None and held.generation == generation

            await until(confirmed_generation, what="the core knows the new generation")


async def test_the_hub_refuses_a_report_about_another_sites_controller(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with (
        running_core(sqlite_url, broker, NORTH + SOUTH) as run,
        _agent(run, broker, "north", NORTH, tmp_path),
        _agent(run, broker, "south", SOUTH, tmp_path),
    ):
        await until(lambda: run.all_confirmed(NORTH + SOUTH), what="the first sync")

        def n1() -> tuple[str, int] | None:
            with run.core.db.session(readonly=True) as s:
                held = sync_store.get_controller(s, "n1")
            return (held.revision, held.checksum) if held else None

        before = await run.gateway.call(n1)
        forged = {
            "site": "south",
            "seq": 999999,
            "controller": "n1",
            "revision": "forged",
            "checksum": 1,
            "generation": 1,
            "credentials": [],
            "entries": 0,
            "ms": 1.0,
            "at": datetime.now(UTC).isoformat(),
        }
        async with aiomqtt.Client(broker.host, broker.port, identifier="forger") as forger:
            await forger.subscribe("lockgate/v1/site/south/ack", qos=1)
            await forger.publish(
                "lockgate/v1/site/south/confirm", json.dumps(forged).encode(), qos=1
            )
            # nor about a controller no site serves
            unknown = forged | {"seq": 999998, "controller": "x9"}
            await forger.publish(
                "lockgate/v1/site/south/confirm", json.dumps(unknown).encode(), qos=1
            )
            acks: list[bytes] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.5):
                    async for message in forger.messages:
                        acks.append(bytes(message.payload))  # type: ignore[arg-type]
        assert not any(b"999999" in a or b"999998" in a for a in acks)
        assert await run.gateway.call(n1) == before

        def x9() -> object:
            with run.core.db.session(readonly=True) as s:
                return sync_store.get_controller(s, "x9")

        assert await run.gateway.call(x9) is None
