"""An agent serves a simulated UHPPOTE controller (UDP/TCP) and an OSDP reader bus (a
pseudo-terminal; the agent's driver is the panel) beside a Modbus controller, through the
existing drivers: the first sync reaches all three, a blocked ID06 card's tag is refused at
every door afterwards, and the access events and a reader's tamper reach the core as they do
from the core's own workers; events the UHPPOTE controller lost before the agent read them
are reported; a list that takes a tag away and adds one reaches it revocations first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.agent import Agent
from gateway.commands import model as m
from gateway.config import Settings
from gateway.core import Submission
from gateway.demo.broker import PrivateMosquitto
from gateway.store import fact_repository as fact_store
from gateway.store import migrate
from gateway.store.database import Database
from gateway.sync.controller import REVOCATIONS_FIRST
from simulators.site import ControllerSpec, SimulatedSite, SiteSpec
from tests.gateway.agent.facts import card, site_facts, tag
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
                lambda: all(_events(run, "revocation_confirmed", c, tag(0)) for c in ALL),
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


async def test_a_uhppote_controller_at_an_agent_gets_revocations_first(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """A document that takes a tag away and gives one back reaches the gate (no atomic
    commit) in two verified writes: the revocation confirmed to the core first."""
    migrate.upgrade(sqlite_url)
    with Database(sqlite_url).session() as s:
        fact_store.put_many(s, site_facts([GATE], 2))  # type: ignore[arg-type]
    spec = SiteSpec(controllers=[ControllerSpec(id=GATE, kind="uhppote", serial=423187757)])
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
        agent = Agent(settings, "north", state_file(tmp_path, "north"), resend_s=1.0)
        async with agent:
            await until(lambda: run.all_confirmed([GATE]), 20.0, "the first sync")
            await run.block(1)
            await until(
                lambda: bool(_events(run, "revocation_confirmed", GATE, tag(1))),
                what="tag 1 off the gate",
            )
            await until(lambda: run.all_confirmed([GATE]), what="in sync")
            mark, writes = len(run.sink.events), agent.workers[GATE].writes
            outcomes = await run.gateway.call(
                run.core.submit_many,
                [
                    Submission(m.BlockId06(card_number=card(0)), "tester"),
                    Submission(m.UnblockId06(card_number=card(1)), "tester"),
                ],
            )
            assert all(o.ok for o in outcomes), [o.error for o in outcomes]
            await until(lambda: run.all_confirmed([GATE]), what="the gate in sync again")
            reports = [
                (k, b)
                for k, b in run.sink.events[mark:]
                if b.get("device") == GATE and k in ("allow_list_written", "revocation_confirmed")
            ]
            revision = run.core.engine.controller_revision(GATE)
            assert agent.workers[GATE].writes == writes + 2  # without tag 1, then whole
            # the revocation is confirmed with the first write; that confirmation is replaced
            # by the second if the agent had not sent it yet
            got = [(k, b.get("revision"), b.get("credential")) for k, b in reports]
            assert got in (
                [
                    ("allow_list_written", f"{revision}{REVOCATIONS_FIRST}", None),
                    ("revocation_confirmed", None, tag(0)),
                    ("allow_list_written", revision, None),
                ],
                [
                    ("allow_list_written", revision, None),
                    ("revocation_confirmed", None, tag(0)),
                ],
            ), got
            assert (await site.present(GATE, int(tag(0)), 1))["granted"] is False
            assert (await site.present(GATE, int(tag(1)), 1))["granted"] is True
