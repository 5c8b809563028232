"""Key stations at a site's agent: a key inserted at the agent's simulated wall station (a
real pseudo-terminal) gets the image the core planned, written and verified; its audit trail
and the blacklist versions cylinders confirmed reach the core's store as from the core's own
stations; reports are applied once however often they arrive; while the core is away the
agent writes only a newer cached image, says that central updates are waiting, and delivers
what it collected when the core is back."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from drivers.serialstation.image import encode_image
from gateway.agent.stations import WAITING
from gateway.bridge.sitepayloads import SiteAck, SiteKeyImage
from gateway.commands import model as m
from gateway.demo.broker import PrivateMosquitto
from gateway.reports.exposure import BLOCKED, exposure
from gateway.store import device_records as sync_store
from tests import sample
from tests.gateway.agent.harness import until
from tests.gateway.agent.stationsite import WALL, StationSite, station_site

SIGNAL = int(sample.CYL_SIGNAL[0])


def _key(run: StationSite, serial: str) -> sync_store.KeyConfirmed | None:
    with run.core.db.session(readonly=True) as s:
        return sync_store.get_key(s, serial)


async def test_a_key_at_an_agent_station_gets_its_planned_image_and_its_trail_reaches_the_core(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with station_site(sqlite_url, broker, tmp_path, "keys-online") as run:
        visit = await run.program(sample.KEY_ANNA)
        assert (visit.outcome, visit.answered, visit.notice) == ("written", True, "")
        await until(lambda: run.agent.store.waiting() == 0, what="the confirmation acknowledged")
        confirmed = _key(run, sample.KEY_ANNA)
        state = run.core.engine.state(sample.KEY_ANNA)
        assert confirmed is not None and state is not None
        assert (confirmed.station_id, confirmed.credential_revision) == (WALL, state.revision)
        assert [b["key"] for b in run.events("key_programmed")] == [sample.KEY_ANNA]
        assert run.site.visit(sample.KEY_ANNA, SIGNAL)["granted"]
        assert run.sink is not None and run.sink.devices[WALL] == (True, "connected")

        # Anna's card is blocked while her key is away: Björn's key carries the blacklist
        await run.submit(m.BlockId06(card_number="ID06AN0001"))
        visit = await run.program(sample.KEY_BJORN_MAIN)
        assert visit.outcome == "written"
        assert run.site.visit(sample.KEY_BJORN_MAIN, SIGNAL)["granted"]
        refused = run.site.visit(sample.KEY_ANNA, SIGNAL)
        assert not refused["granted"] and refused["reason"] == "BLACKLISTED"

        # Björn's next visit brings the cylinder's confirmation and his trail to the core
        # and clears the trail on his key
        await run.program(sample.KEY_BJORN_MAIN)
        await until(lambda: run.agent.store.waiting() == 0, what="the visit acknowledged")
        assert not run.site.world.registry.get(sample.KEY_BJORN_MAIN).audit
        confirmed_bl = run.events("blacklist_confirmed")
        assert [(b["cylinder"], b["via_station"]) for b in confirmed_bl] == [(str(SIGNAL), WALL)]
        granted = [b for b in run.events("access_granted") if b["key"] == sample.KEY_BJORN_MAIN]
        assert granted and {b["via_station"] for b in granted} == {WALL}
        with run.core.db.session(readonly=True) as s:
            rows = exposure(s, run.core.engine, run.core.clock())
        mine = {r.lock: r.status for r in rows if r.credential == sample.KEY_ANNA}
        assert mine[f"cylinder:{SIGNAL}"] == BLOCKED

        # the hub pushed Anna's revoking image to the site that cached her key
        await until(
            lambda: (
                (d := run.agent.keys.cached(sample.KEY_ANNA)) is not None
                and d.image is not None
                and not d.image.enabled
            ),
            what="Anna's disabled image pushed",
        )
        visit = await run.program(sample.KEY_ANNA)
        assert visit.outcome == "written"
        await until(
            lambda: (
                {"credential": sample.KEY_ANNA, "device": WALL}
                in run.events("revocation_confirmed")
            ),
            what="the revocation confirmed",
        )
        assert not run.site.visit(sample.KEY_ANNA, int(sample.CYL_SIGNAL[1]))["granted"]


async def test_a_report_delivered_twice_is_applied_once(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    site = "keys-twice"
    async with station_site(sqlite_url, broker, tmp_path, site) as run:
        base = f"lockgate/v1/site/{site}"
        at = datetime.now(UTC).isoformat()
        held = {
            "serial": sample.KEY_DAVID,
            "revision": "",
            "enabled": False,
        }
        visit = {
            "site": site,
            "seq": 9001,
            "station": WALL,
            "serial": sample.KEY_DAVID,
            "held": held,
            "records": [
                {
                    "sequence": 7,
                    "at": at,
                    "cylinder": SIGNAL,
                    "key_serial": sample.KEY_DAVID,
                    "outcome": "denied",
                    "reason": "NOT_PROGRAMMED",
                }
            ],
            "at": at,
        }
        confirm = {
            "site": site,
            "seq": 9002,
            "station": WALL,
            "serial": sample.KEY_DAVID,
            "version": 1,
            "revision": "00000000000000aa",
            "written": True,
            "enabled": False,
            "at": at,
        }
        acked: list[int] = []
        async with aiomqtt.Client(broker.host, broker.port, identifier="fake-agent") as c:
            await c.subscribe(f"{base}/ack", qos=1)
            for _ in range(2):
                await c.publish(f"{base}/key_visit", json.dumps(visit), qos=1)
                await c.publish(f"{base}/key_confirm", json.dumps(confirm), qos=1)
            async with asyncio.timeout(10):
                async for msg in c.messages:
                    seqs = SiteAck.model_validate_json(msg.payload).seqs  # type: ignore[arg-type]
                    # (the site's real agent has its own messages acknowledged here too)
                    acked += [q for q in seqs if q in (9001, 9002)]
                    if sorted(acked) == [9001, 9001, 9002, 9002]:
                        break
        denied = [b for b in run.events("access_denied") if b["key"] == sample.KEY_DAVID]
        assert len(denied) == 1 and denied[0]["via_station"] == WALL
        assert len(run.events("key_programmed")) == 1
        confirmed = _key(run, sample.KEY_DAVID)
        assert confirmed is not None and confirmed.revision == "00000000000000aa"


async def test_without_the_core_a_newer_cached_image_is_written_and_the_trail_waits(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with station_site(sqlite_url, broker, tmp_path, "keys-away") as run:
        assert (await run.program(sample.KEY_ANNA)).outcome == "written"
        await run.submit(m.BlockId06(card_number="ID06AN0001"))
        await until(
            lambda: (d := run.agent.keys.cached(sample.KEY_ANNA)) is not None and d.revoking,
            what="Anna's revoking image pushed",
        )
        await until(lambda: run.agent.store.waiting() == 0, what="the outbox empty")
        await run.stop_core()
        run.station.wait_s = 1.0  # no answer will come: do not keep the key waiting

        # Anna turned her key at a cylinder: the record waits on her key
        assert run.site.visit(sample.KEY_ANNA, SIGNAL)["granted"]
        visit = await run.program(sample.KEY_ANNA)
        assert (visit.outcome, visit.answered) == ("written", False)
        assert visit.notice.startswith(WAITING) and run.station.notice == visit.notice
        assert not run.site.visit(sample.KEY_ANNA, SIGNAL)["granted"]
        # a key never seen: nothing to write, and the station says why
        visit = await run.program(sample.KEY_DAVID)
        assert (visit.outcome, visit.answered) == ("waiting", False)
        assert WAITING in visit.notice
        # what waits goes revocations first
        pending = run.agent.store.pending()
        assert pending[0].priority == 0 and pending[0].payload["serial"] == sample.KEY_ANNA
        assert {p.topic for p in pending} >= {"site_key_visit", "site_key_confirm"}

        await run.start_core()
        await until(lambda: run.agent.store.waiting() == 0, 15, what="the outbox delivered")
        assert {"credential": sample.KEY_ANNA, "device": WALL} in run.events("revocation_confirmed")
        anna = [b for b in run.events("access_granted") if b["key"] == sample.KEY_ANNA]
        # the key's own record and the one the cylinder handed to it, each once
        assert sorted(b["source"] for b in anna) == ["cylinder", "key"]
        assert {b["cylinder"] for b in anna} == {str(SIGNAL)}
        confirmed = _key(run, sample.KEY_ANNA)
        assert confirmed is not None and not confirmed.enabled


async def test_a_malformed_key_image_is_refused_with_its_reason(
    sqlite_url: str,
    broker: PrivateMosquitto,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = "keys-bad"
    async with station_site(sqlite_url, broker, tmp_path, site) as run:
        assert (await run.program(sample.KEY_CECILIA)).outcome == "written"
        held = run.agent.keys.cached(sample.KEY_CECILIA)
        assert held is not None
        bad = held.model_dump(mode="json") | {"version": held.version + 5}
        bad["image"] = bad["image"] | {"serial": sample.KEY_ANNA}
        caplog.set_level(logging.WARNING)
        async with aiomqtt.Client(broker.host, broker.port, identifier="fake-core") as c:
            await c.publish(f"lockgate/v1/site/{site}/key_image", json.dumps(bad), qos=1)
            await c.publish(
                f"lockgate/v1/site/{site}/key_image",
                json.dumps(held.model_dump(mode="json") | {"version": 0}),
                qos=1,
            )
        await until(lambda: len(run.agent.key_link.refused) == 2, what="two refusals")
        assert run.agent.key_link.refused[0].startswith("malformed key image: image.serial")
        assert "version" in run.agent.key_link.refused[1]
        assert "refused a key image" in caplog.text
        assert run.agent.keys.cached(sample.KEY_CECILIA) == held


async def test_without_the_core_an_image_is_written_only_over_an_older_one(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with station_site(sqlite_url, broker, tmp_path, "keys-older") as run:
        assert (await run.program(sample.KEY_ANNA)).outcome == "written"
        first = await run.program(sample.KEY_CECILIA)
        assert first.outcome == "written" and first.version is not None
        # Anna's block changes the blacklist of the cylinders Cecilia opens: the hub pushes
        # her a newer image carrying it
        await run.submit(m.BlockId06(card_number="ID06AN0001"))
        await until(
            lambda: (
                (d := run.agent.keys.cached(sample.KEY_CECILIA)) is not None
                and d.version > (first.version or 0)
                and d.image is not None
                # the blacklist naming Anna: the key already carries an empty one, and an
                # image pushed for another reason may come first
                and any(
                    b.cylinder == SIGNAL and sample.KEY_ANNA in b.serials
                    for b in d.image.blacklists
                )
            ),
            what="Cecilia's image with Anna on the blacklist pushed",
        )
        await until(lambda: run.agent.store.waiting() == 0, what="the outbox empty")
        await run.stop_core()
        run.station.wait_s = 1.0  # no answer will come: do not keep the key waiting

        # the key holds the image the agent wrote before: the cached one is newer
        visit = await run.program(sample.KEY_CECILIA)
        assert (visit.outcome, visit.answered) == ("written", False)
        key = run.site.world.registry.get(sample.KEY_CECILIA)
        assert any(
            b.cylinder == SIGNAL and sample.KEY_ANNA in b.serials for b in key.image.blacklists
        )

        # a key holding an image the agent never saw (programmed elsewhere, maybe later)
        # keeps it
        unknown = replace(key.image, revision="f" * 16, blacklists=())
        key.store(encode_image(unknown))
        visit = await run.program(sample.KEY_CECILIA)
        assert (visit.outcome, visit.answered) == ("kept", False)
        assert WAITING in visit.notice and "nothing written" in visit.notice
        assert run.site.world.registry.get(sample.KEY_CECILIA).image.revision == "f" * 16


async def test_images_the_agent_asks_for_again_come_revocations_first(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    site = "keys-order"
    async with station_site(sqlite_url, broker, tmp_path, site) as run:
        assert (await run.program(sample.KEY_ANNA)).outcome == "written"
        assert (await run.program(sample.KEY_CECILIA)).outcome == "written"
        await run.submit(m.BlockId06(card_number="ID06CE0001"))
        await until(
            lambda: (d := run.agent.keys.cached(sample.KEY_CECILIA)) is not None and d.revoking,
            what="Cecilia's revoking image pushed",
        )
        # and Anna's, whose cylinder now blacklists Cecilia's key: nothing else is on its way
        await until(
            lambda: (
                (d := run.agent.keys.cached(sample.KEY_ANNA)) is not None
                and d.image is not None
                and any(sample.KEY_CECILIA in b.serials for b in d.image.blacklists)
            ),
            what="Anna's image with the new blacklist pushed",
        )
        async with aiomqtt.Client(broker.host, broker.port, identifier="sniffer") as c:
            await c.subscribe(f"lockgate/v1/site/{site}/key_image", qos=1)
            # what the agent asks after a reconnection or a full document: every cached key
            await run.agent.key_link.refresh()
            got: list[SiteKeyImage] = []
            async with asyncio.timeout(10):
                async for msg in c.messages:
                    got.append(SiteKeyImage.model_validate_json(msg.payload))  # type: ignore[arg-type]
                    if len(got) == 2:
                        break
        # Anna's serial sorts first, but Cecilia's image takes her access away
        assert [(d.serial, d.revoking) for d in got] == [
            (sample.KEY_CECILIA, True),
            (sample.KEY_ANNA, False),
        ]


async def test_a_site_cannot_report_for_another_sites_station(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with station_site(sqlite_url, broker, tmp_path, "keys-owner") as run:
        await until(lambda: WALL in run.hub.keys.station_owner if run.hub else False)
        thief = "keys-thief"
        at = datetime.now(UTC).isoformat()

        def visit(seq: int, station: str) -> str:
            return json.dumps(
                {
                    "site": thief,
                    "seq": seq,
                    "station": station,
                    "serial": sample.KEY_ERIK,
                    "held": {"serial": sample.KEY_ERIK, "revision": "", "enabled": False},
                    "records": [
                        {
                            "sequence": seq,
                            "at": at,
                            "cylinder": SIGNAL,
                            "key_serial": sample.KEY_ERIK,
                            "outcome": "denied",
                        }
                    ],
                    "at": at,
                }
            )

        base = f"lockgate/v1/site/{thief}"
        async with aiomqtt.Client(broker.host, broker.port, identifier="thief") as c:
            await c.subscribe(f"{base}/ack", qos=1)
            await c.publish(f"{base}/key_visit", visit(9101, WALL), qos=1)
            await c.publish(f"{base}/key_visit", visit(9102, "thief-station"), qos=1)
            acked: list[int] = []
            async with asyncio.timeout(10):
                async for msg in c.messages:
                    acked += SiteAck.model_validate_json(msg.payload).seqs  # type: ignore[arg-type]
                    if 9102 in acked:
                        break
        assert 9101 not in acked
        denied = [b for b in run.events("access_denied") if b["key"] == sample.KEY_ERIK]
        assert [b["via_station"] for b in denied] == ["thief-station"]
        assert run.hub is not None and run.hub.keys.station_owner[WALL] == "keys-owner"
