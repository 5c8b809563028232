"""An agent serves a simulated UHPPOTE controller (UDP/TCP) and an OSDP reader bus (a
pseudo-terminal; the agent's driver is the panel) beside a Modbus controller, through the
existing drivers: the first sync reaches all three, a blocked ID06 card's tag is refused at
every door afterwards, and the access events and a reader's tamper reach the core as
they do from the core's own workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.agent import Agent
from gateway.config import Settings
from gateway.demo.broker import PrivateMosquitto
from gateway.store import fact_repository as fact_store
from gateway.store import migrate
from gateway.store.database import Database
from simulators.site import ControllerSpec, SimulatedSite, SiteSpec
from tests.gateway.agent.facts import site_facts, tag
from tests.gateway.agent.harness import RunningCore, mqtt_of, running_core, state_file, until

MODBUS = "m1"
GATE = "gate"
HUT = "hut"
ALL = [MODBUS, GATE, HUT]


def _events(run: RunningCore, kind: str, device: str, number: str) -> list[dict[str, Any]]:
    return [
        b
        for k, b in run.sink.events
        if k == kind and b.get("device") == device and b.get("credential") == number
    ]


async def test_an_agent_serves_uhppote_and_osdp_beside_modbus(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    migrate.upgrade(sqlite_url)
    with Database(sqlite_url).session() as s:
        fact_store.put_many(s, site_facts(ALL, 2))  # type: ignore[arg-type]
    spec = SiteSpec(
        controllers=[
            ControllerSpec(id=GATE, kind="uhppote", serial=423187757, doors=2),
            ControllerSpec(id=HUT, kind="osdp", doors=2),
        ]
    )
    async with (
        SimulatedSite(spec, control_port=None, folder=tmp_path / "site") as site,
        running_core(sqlite_url, broker, [MODBUS], facts=False) as run,
    ):
        settings = Settings.model_validate(
            {
                "mqtt": mqtt_of(broker),
                "sync": {"retry_initial_s": 0.1, "retry_max_s": 1.0, "tick_s": 0.5},
                "controllers": [
                    {
                        "id": MODBUS,
                        "driver": "modbus-door",
                        "options": run.simulators[MODBUS].driver_options(),
                    },
                    *site.controller_devices(),
                ],
            }
        )
        async with Agent(settings, "north", state_file(tmp_path, "north"), resend_s=1.0):
            await until(lambda: run.all_confirmed(ALL), 20.0, "the first sync")
            assert run.hub.sites["north"].controllers == ALL
            for cid in (GATE, HUT):
                assert (await site.present(cid, int(tag(0)), 1))["granted"] is True, cid
            assert run.holds(MODBUS, tag(0))
            await until(
                lambda: all(_events(run, "access_granted", c, tag(0)) for c in (GATE, HUT)),
                what="the granted events at the core",
            )

            await run.block(0)
            await until(lambda: not run.holds(MODBUS, tag(0)), what="the tag off the Modbus one")
            await until(
                lambda: all(
                    _events(run, "revocation_confirmed", c, tag(0)) for c in ALL
                ),
                what="the revocation confirmed by every controller",
            )
            assert await run.settled(tag(0))
            for cid in (GATE, HUT):
                assert (await site.present(cid, int(tag(0)), 1))["granted"] is False, cid
                assert (await site.present(cid, int(tag(1)), 1))["granted"] is True, cid
            await until(
                lambda: all(_events(run, "access_denied", c, tag(0)) for c in (GATE, HUT)),
                what="the denied events at the core",
            )
            # a reader's tamper switch reaches the core as the device event it is
            await site.reader_event(HUT, 1, "tamper")
            await until(
                lambda: any(
                    k == "device_tamper" and b.get("device") == HUT and b.get("door") == 1
                    for k, b in run.sink.events
                ),
                what="the tamper event at the core",
            )


async def test_events_a_uhppote_controller_lost_at_an_agent_reach_the_core(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    migrate.upgrade(sqlite_url)
    with Database(sqlite_url).session() as s:
        fact_store.put_many(s, site_facts([GATE], 2))  # type: ignore[arg-type]
    spec = SiteSpec(
        controllers=[ControllerSpec(id=GATE, kind="uhppote", serial=423187757, doors=2, events=40)]
    )
    async with (
        SimulatedSite(spec, control_port=None, folder=tmp_path / "site") as site,
        running_core(sqlite_url, broker, [], facts=False) as run,
    ):
        settings = Settings.model_validate(
            {
                "mqtt": mqtt_of(broker),
                "sync": {"retry_initial_s": 0.1, "retry_max_s": 1.0, "tick_s": 0.5},
                "controllers": site.controller_devices(),
            }
        )
        state = state_file(tmp_path, "north")
        async with Agent(settings, "north", state, resend_s=1.0):
            await until(lambda: run.all_confirmed([GATE]), 20.0, "the first sync")
            assert (await site.present(GATE, int(tag(0)), 1))["granted"] is True
            await until(
                lambda: bool(_events(run, "access_granted", GATE, tag(0))), what="the first read"
            )
        # while the agent is away, 50 reads overwrite the oldest of the gate's 40 events
        for _ in range(50):
            await site.present(GATE, int(tag(1)), 1)
        async with Agent(settings, "north", state, resend_s=1.0):
            await until(
                lambda: any(
                    k == "controller_events_lost" and b["device"] == GATE
                    for k, b in run.sink.events
                ),
                what="the lost events reported",
            )
            lost = [b for k, b in run.sink.events if k == "controller_events_lost"]
            assert [(b["first"], b["last"], b["reason"]) for b in lost] == [
                (lost[0]["first"], lost[0]["first"] + 10 - 1, "overwritten")
            ]
            await until(
                lambda: len(_events(run, "access_granted", GATE, tag(1))) == 40,
                what="the 40 events the gate kept",
            )
