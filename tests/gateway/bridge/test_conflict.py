"""A second gateway on the same broker is detected and reported: one announcing itself online
on the same topics (both would apply every request), and one taking over the client id."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.demo.broker import PrivateMosquitto
from tests.gateway.bridge.harness import central, poll_until, running_gateway, settings_for


def conflicts(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in events if e["kind"] == "gateway_conflict"]


async def test_a_second_gateway_on_the_same_topics_is_reported(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    first = settings_for(f"sqlite:///{tmp_path / 'a.db'}", broker)
    base = first.mqtt.base_topic
    second = settings_for(
        f"sqlite:///{tmp_path / 'b.db'}", broker, base=base, client_id=f"other-{base}"
    )
    async with running_gateway(first) as a, central(broker, base) as c:
        assert a.bridge.conflicts == 0
        async with running_gateway(second) as b:
            await poll_until(lambda: a.bridge.conflicts >= 1)
            await c.wait_for(lambda: bool(conflicts(c.events())))
            event = conflicts(c.events())[0]
            assert event["instance"] == a.bridge.instance
            assert event["other_instance"] == b.bridge.instance
        # The second one's last words ("offline") do not leave the first one looking offline.
        await c.wait_for(lambda: c.on("v1/bridge/state")[-1][0].startswith(b'{"state":"online"'))


@pytest.mark.slow
async def test_a_gateway_whose_client_id_is_taken_over_reports_it(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    first = settings_for(f"sqlite:///{tmp_path / 'a.db'}", broker)
    base = first.mqtt.base_topic
    twin = settings_for(
        f"sqlite:///{tmp_path / 'b.db'}", broker, base=base, client_id=first.mqtt.client_id
    )
    async with running_gateway(first) as a, central(broker, base) as c:
        async with running_gateway(twin):
            await poll_until(lambda: a.bridge.conflicts >= 1)
        await c.wait_for(lambda: bool(conflicts(c.events())), timeout=30)
