"""``/readyz`` with the MQTT bridge: ready once connected to the broker, not ready (503, the
bridge named) while the broker is down."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from gateway.compose import build_gateway, mqtt_bridge
from gateway.demo.broker import PrivateMosquitto
from gateway.web import create_app
from tests.gateway.bridge.harness import settings_for


@pytest.mark.broker
async def test_ready_follows_the_broker_connection(
    tmp_path: Path, broker: PrivateMosquitto
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'ready.db'}", broker)
    gateway = build_gateway(settings)
    await gateway.start()
    try:
        bridge = mqtt_bridge(gateway)
        assert bridge is not None
        await asyncio.wait_for(bridge.connected.wait(), timeout=15)
        app = create_app(gateway)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            r = await c.get("/readyz")
            assert r.status_code == 200 and r.json()["checks"] == {"store": "ok", "bridge": "ok"}
            broker.stop()
            for _ in range(100):
                r = await c.get("/readyz")
                if r.status_code == 503:
                    break
                await asyncio.sleep(0.1)
            assert r.status_code == 503
            assert r.json()["checks"]["bridge"] == "not connected"
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await gateway.stop()
        if not broker.running:
            broker.start()
