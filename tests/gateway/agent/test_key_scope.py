"""A site's agent gets key images only of keys that visited one of its own stations: a key
that visited site A is answered to A, and a request of site B for it is refused (logged,
nothing sent); after a core restart the hub still answers A's refresh, from the visits it
stored, and still refuses B."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from gateway.agent.keyhub import KeyHub
from gateway.demo.broker import PrivateMosquitto
from tests import sample
from tests.gateway.agent.harness import until
from tests.gateway.agent.stationsite import StationSite, station_site

BASE = "lockgate/v1/site"


@contextlib.asynccontextmanager
async def _images(broker: PrivateMosquitto, site: str) -> AsyncIterator[list[str]]:
    """The key serials of every ``key_image`` the core sends site ``site``."""
    got: list[str] = []
    async with aiomqtt.Client(broker.host, broker.port) as c:
        await c.subscribe(f"{BASE}/{site}/key_image", qos=1)

        async def read() -> None:
            async for msg in c.messages:
                got.append(json.loads(bytes(msg.payload))["serial"])  # type: ignore[arg-type]

        task = asyncio.create_task(read(), name="test-key-images")
        try:
            yield got
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _ask(broker: PrivateMosquitto, site: str, serial: str) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as c:
        body = {"site": site, "serials": [serial]}
        await c.publish(f"{BASE}/{site}/key_request", json.dumps(body), qos=1)


def _keys(run: StationSite) -> KeyHub:
    assert run.hub is not None
    return run.hub.keys


def _hub_sites(run: StationSite) -> set[str]:
    return set(run.hub.sites) if run.hub is not None else set()


async def _refused(run: StationSite, broker: PrivateMosquitto, site: str, serial: str) -> None:
    _keys(run).visit_wait_s = 0.5  # the wait for a visit that does not come
    before = _keys(run).refused
    async with _images(broker, site) as images:
        await _ask(broker, site, serial)
        await until(lambda: _keys(run).refused > before, 5.0, f"{site}'s request refused")
        assert images == []


async def test_only_a_site_its_key_visited_gets_the_image_also_after_a_core_restart(
    sqlite_url: str,
    broker: PrivateMosquitto,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.agent.keyhub")
    async with station_site(sqlite_url, broker, tmp_path, "site-a") as run:
        # Anna's key visits site A's wall station: A is answered (the visit goes first)
        visit = await run.program(sample.KEY_ANNA)
        assert (visit.outcome, visit.answered) == ("written", True)

        # site B asks for Anna's key: nothing; the refusal is logged with its reason
        await _refused(run, broker, "site-b", sample.KEY_ANNA)
        assert (
            f"key image of {sample.KEY_ANNA} refused to site site-b: the key never visited "
            "a station of the site"
        ) in caplog.text
        # asked again (an agent asks every few seconds while it waits): refused, not logged
        await _refused(run, broker, "site-b", sample.KEY_ANNA)
        assert caplog.text.count(f"key image of {sample.KEY_ANNA} refused to site site-b") == 1
        # site A itself gets nothing for a key that never came to it
        await _refused(run, broker, "site-a", sample.KEY_BJORN_MAIN)

        # a restarted core knows the visit from its store: A's refresh is answered, B refused
        await run.stop_core()
        await run.start_core()
        await until(lambda: "site-a" in _hub_sites(run), 5.0, "the new hub subscribed")
        async with _images(broker, "site-a") as images:
            await _ask(broker, "site-a", sample.KEY_ANNA)
            await until(lambda: sample.KEY_ANNA in images, 5.0, "A's refresh answered")
        await _refused(run, broker, "site-b", sample.KEY_ANNA)
