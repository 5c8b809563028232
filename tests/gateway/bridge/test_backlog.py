"""A backlog at the broker: ten times ``mqtt.max_pending`` requests waiting when the gateway
connects, and a broker restart in the middle of a flood. Every request is applied once, the
gateway never stalls, and the inbound buffer stays bounded whatever the backlog (at most twice
``max_pending``: the test broker, Mosquitto 2.0, sends a resumed session's backlog beyond the
Receive Maximum, and the session then takes the rest on a new connection)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path

import aiomqtt
import pytest

from gateway.commands import model as m
from gateway.demo.broker import PrivateMosquitto
from gateway.domain.facts import Competence
from tests import sample
from tests.gateway.bridge.harness import (
    body,
    central,
    poll_store_until,
    poll_until,
    running_gateway,
    settings_for,
)
from tests.gateway.bridge.test_resilience import applied, inbox_ids

MAX_PENDING = 50
TODAY = date.today()


def competence(i: int) -> bytes:
    command = m.PutCompetence(
        competence=Competence(
            person_id="p-anna", code=f"B{i:04d}", valid_until=TODAY + timedelta(days=10 + i)
        )
    )
    return json.dumps(body(command, f"b-{i}")).encode()


async def flood(broker: PrivateMosquitto, base: str, numbers: range) -> list[str]:
    """Publish competences ``numbers``; the request ids the broker acknowledged."""
    accepted: list[str] = []
    async with aiomqtt.Client(
        broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, max_inflight_messages=100
    ) as client:
        for i in numbers:
            await client.publish(f"{base}/v1/request/competence", competence(i), qos=1)
            accepted.append(f"b-{i}")
    return accepted


@pytest.mark.slow
async def test_ten_times_max_pending_waiting_at_connect_are_all_applied(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/g.db", broker, max_pending=MAX_PENDING)
    async with running_gateway(settings) as gw, central(broker, gw.base) as c:
        for i, command in enumerate(sample.sample_commands(TODAY)):
            assert (await c.request(command, f"s-{i}"))["status"] == "ok"
    # The gateway is gone; its persistent session collects the backlog.
    accepted = await flood(broker, settings.mqtt.base_topic, range(10 * MAX_PENDING))
    async with running_gateway(settings) as gw:
        await poll_store_until(lambda: set(accepted) <= inbox_ids(gw.gateway.db), timeout=60)
        assert gw.bridge.high_water <= 2 * MAX_PENDING
        counts = applied(gw.gateway.db)
    assert len(counts) == len(accepted) + 2 and set(counts.values()) == {1}


@pytest.mark.slow
async def test_a_broker_restart_under_a_flood_stalls_nothing(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/g.db", broker, max_pending=MAX_PENDING)
    async with running_gateway(settings) as gw:
        async with central(broker, gw.base) as c:
            for i, command in enumerate(sample.sample_commands(TODAY)):
                assert (await c.request(command, f"s-{i}"))["status"] == "ok"
        async with step("first flood"):
            accepted = await flood(broker, gw.base, range(10 * MAX_PENDING))
        connections = gw.bridge.connections
        async with step("broker restart"):
            # Off the event loop: the gateway sees the broker go away and come back.
            await asyncio.to_thread(broker.restart)
        async with step("reconnect"):
            await poll_until(lambda: gw.bridge.connections > connections, timeout=30, step=0.1)
        async with step("second flood"):
            accepted += await flood(broker, gw.base, range(10 * MAX_PENDING, 20 * MAX_PENDING))
        async with step("drain"):
            await poll_store_until(lambda: set(accepted) <= inbox_ids(gw.gateway.db), timeout=60)
        assert gw.bridge.high_water <= 2 * MAX_PENDING
        counts = await asyncio.to_thread(applied, gw.gateway.db)
    assert set(counts.values()) == {1}, "none applied twice"
    assert len(counts) == len(accepted) + 2


@asynccontextmanager
async def step(name: str, timeout: float = 75.0) -> AsyncIterator[None]:
    """A phase of a scenario that must end within ``timeout``: a stall names its phase."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        pytest.fail(f"stalled in phase {name!r} (more than {timeout:.0f} s)")


@pytest.mark.slow
async def test_the_response_to_a_revocation_overtakes_a_flood(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/g.db", broker)
    flood_size = 3000
    async with running_gateway(settings) as gw, central(broker, gw.base) as c:
        for i, command in enumerate(sample.sample_commands(TODAY)):
            assert (await c.request(command, f"s-{i}"))["status"] == "ok"
        # The flood waits at the broker (the gateway's session collects it) ...
        await gw.bridge.stop()
        flooded = await flood(broker, gw.base, range(flood_size))
        block = m.BlockId06(card_number="ID06BK0001", reason="reported stolen")
        await c.publish(block.name, body(block, "urgent-1"))
        # ... and the revocation behind it is answered long before the flood is through.
        await gw.bridge.start(gw.gateway)
        answer = await c.response("urgent-1", timeout=60)
        assert answer["status"] == "ok"
        answered_before = sum(r in c.responses for r in flooded)
        assert answered_before < flood_size // 2, (
            f"{answered_before} of {flood_size} flood responses came before the revocation's"
        )
        await c.wait_for(lambda: all(r in c.responses for r in flooded), timeout=60)
