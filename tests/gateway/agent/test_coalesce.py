"""The confirmations of one site reach the core in one message: after a revocation on all
three controllers of a site, one ``confirm`` message carries the three (each acknowledged by
its own sequence number); a core still accepts a single confirmation as older agents send it;
the outbox splits confirmations over messages of bounded size, events stay one each."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt

from gateway.agent import Agent
from gateway.agent.local import REVOCATION, UPDATE, Pending
from gateway.agent.outbox import wire_messages
from gateway.bridge.topics import TopicMap
from gateway.demo.broker import PrivateMosquitto
from gateway.runtime import cancel_and_wait
from tests.gateway.agent.facts import tag
from tests.gateway.agent.harness import agent_settings, running_core, state_file, until

SITE = ["c1", "c2", "c3"]
TOPIC = "lockgate/v1/site/west/confirm"


async def watch(broker: PrivateMosquitto, bodies: list[dict[str, object]]) -> None:
    """Record every confirm message of site west (an empty dict once subscribed)."""
    async with aiomqtt.Client(broker.host, broker.port, identifier="confirm-spy") as spy:
        await spy.subscribe(TOPIC, qos=1)
        bodies.append({})
        async for message in spy.messages:
            bodies.append(json.loads(message.payload))  # type: ignore[arg-type]


async def test_a_sites_confirmations_go_in_one_message(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with running_core(sqlite_url, broker, SITE) as run:
        bodies: list[dict[str, object]] = []
        spy = asyncio.create_task(watch(broker, bodies), name="test-confirm-spy")
        try:
            await until(lambda: bodies == [{}], what="the spy subscribed")
            bodies.clear()
            settings = agent_settings(broker, {c: run.simulators[c].driver_options() for c in SITE})
            settings.sync.confirm_wait_s = 3.0
            async with Agent(settings, "west", state_file(tmp_path, "west")) as a:
                await until(lambda: run.all_confirmed(SITE), what="the first sync")
                assert len(bodies) == 1
                assert sorted(c["controller"] for c in bodies[0]["confirms"]) == SITE  # type: ignore[attr-defined]
                await until(lambda: a.store.waiting() == 0, what="acknowledged")
                bodies.clear()

                await run.block(0)
                await until(lambda: run.settled(tag(0)), what="the revocation confirmed")
                assert len(bodies) == 1
                confirms = bodies[0]["confirms"]
                assert isinstance(confirms, list)
                assert sorted(c["controller"] for c in confirms) == SITE
                assert all(tag(0) not in c["credentials"] for c in confirms)
                await until(lambda: a.store.waiting() == 0, what="each acknowledged")

                # a single confirmation, as agents sent them before, is still applied
                single = {k: v for k, v in confirms[0].items()} | {"seq": 777777}
                async with aiomqtt.Client(broker.host, broker.port, identifier="old") as old:
                    await old.subscribe("lockgate/v1/site/west/ack", qos=1)
                    await old.publish(TOPIC, json.dumps(single).encode(), qos=1)
                    async with asyncio.timeout(10):
                        async for message in old.messages:
                            if 777777 in json.loads(message.payload)["seqs"]:  # type: ignore[arg-type]
                                break
        finally:
            await cancel_and_wait(spy)


def _pending(seq: int, topic: str, credentials: int) -> Pending:
    payload: dict[str, object] = {"controller": f"c{seq}", "credentials": ["1"] * credentials}
    if topic == "site_events":
        payload = {"kind": "availability", "controller": f"c{seq}", "online": True}
    return Pending(seq, REVOCATION if seq == 1 else UPDATE, topic, payload, "s1")


def test_confirmations_are_split_by_size_and_events_stay_single() -> None:
    due = [
        _pending(1, "site_confirm", 10),
        _pending(2, "site_confirm", 10),
        _pending(3, "site_confirm", 3000),
        _pending(4, "site_events", 0),
        _pending(5, "site_events", 0),
    ]
    messages = wire_messages("west", TopicMap("lockgate"), due, limit=4096)
    topics = [t.rsplit("/", 1)[1] for t, _ in messages]
    assert topics == ["confirm", "confirm", "events", "events"]
    first = json.loads(messages[0][1])
    assert first["site"] == "west"
    assert [c["seq"] for c in first["confirms"]] == [1, 2]
    assert [c["seq"] for c in json.loads(messages[1][1])["confirms"]] == [3]
    assert json.loads(messages[2][1])["seq"] == 4
