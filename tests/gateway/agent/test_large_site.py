"""A site larger than one MQTT message: 5 controllers with 5000 allow-list entries each (a
full document of about 2.5 MB) through a private Mosquitto with the deployed
``max_packet_size`` of 1 MiB. The hub sends the documents in parts, the agent accepts them
once complete; the first sync and a revocation on every controller go through, and the
figures are printed (``-s``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from gateway.agent import Agent
from gateway.demo.broker import PrivateMosquitto
from gateway.runtime import cancel_and_wait
from tests.gateway.agent.brokers import LimitedBroker, deployed_limit
from tests.gateway.agent.facts import tag
from tests.gateway.agent.harness import agent_settings, running_core, state_file, until

pytestmark = pytest.mark.slow

CONTROLLERS = [f"big{i}" for i in range(1, 6)]
PEOPLE = 5000


@pytest.fixture
def limited() -> Iterator[LimitedBroker]:
    b = LimitedBroker()
    b.start()
    yield b
    b.cleanup()


async def watch(broker: PrivateMosquitto, sizes: list[int]) -> None:
    """Record the size of every desired message sent to site ``big`` (0 once subscribed)."""
    async with aiomqtt.Client(broker.host, broker.port, identifier="spy") as spy:
        await spy.subscribe("lockgate/v1/site/big/desired", qos=1)
        sizes.append(0)
        async for message in spy.messages:
            sizes.append(len(message.payload))  # type: ignore[arg-type]


async def test_a_site_larger_than_one_message_syncs_and_revokes_in_parts(
    sqlite_url: str, limited: LimitedBroker, tmp_path: Path
) -> None:
    limit = int(deployed_limit("max_packet_size"))
    assert limit == 1048576
    started = time.monotonic()
    async with running_core(
        sqlite_url, limited, CONTROLLERS, people=PEOPLE, capacity=PEOPLE + 100, resend_s=20.0
    ) as run:
        loaded = time.monotonic()
        sims = run.simulators
        settings = agent_settings(limited, {c: sims[c].driver_options() for c in CONTROLLERS})
        agent = Agent(settings, "big", state_file(tmp_path, "big"), resend_s=2.0)
        sizes: list[int] = []
        spy = asyncio.create_task(watch(limited, sizes), name="test-desired-spy")
        await until(lambda: sizes == [0], what="the spy subscribed")
        sizes.clear()
        async with agent:
            connected = time.monotonic()
            await until(lambda: run.all_confirmed(CONTROLLERS), timeout=60, what="the first sync")
            synced = time.monotonic()
            assert agent.refusals == []
            assert all(len(sims[c].memory.active_entries) == PEOPLE for c in CONTROLLERS)
            first, first_n = sum(sizes), len(sizes)
            assert first > 2 * limit  # the full document: more than two broker packets

            await run.block(0)
            blocked = time.monotonic()
            await until(
                lambda: not any(run.holds(c, tag(0)) for c in CONTROLLERS),
                timeout=30,
                what="the revocation on every controller",
            )
            revoked = time.monotonic()
            await until(lambda: run.settled(tag(0)), timeout=30, what="confirmed to the core")
            settled = time.monotonic()
            assert agent.refusals == []

        await cancel_and_wait(spy)
    assert max(sizes) <= 262144 < limit
    print(
        f"\nlarge site: {len(CONTROLLERS)} controllers x {PEOPLE} entries (broker "
        f"max_packet_size {limit}); core loaded in {loaded - started:.1f} s; first sync: "
        f"{first / 1e6:.2f} MB in {first_n} messages, {synced - connected:.1f} s; revocation: "
        f"{(sum(sizes) - first) / 1e6:.2f} MB in {len(sizes) - first_n} messages, off every "
        f"controller in {revoked - blocked:.2f} s, confirmed to the core in "
        f"{settled - blocked:.2f} s; largest message {max(sizes)} bytes"
    )
