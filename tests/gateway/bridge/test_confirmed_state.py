"""``confirmed`` and ``pending`` in the retained credential state, for every kind of credential,
granted and revoked, against the simulated site's door controller and stations: the gateway
with its MQTT bridge and sync engine, and the desk-station process (``lockgate station``).

Before, a revoked tag or visitor card stayed ``"pending": true`` for ever once its controller
had removed it, and the desk-station process published every state as pending."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

from gateway.bridge.payloads import Event, ProgrammingResult, RetainedCredentialState
from gateway.commands import model as m
from gateway.config import Settings
from gateway.demo.broker import PrivateMosquitto
from simulators.site import DEFAULT_SITE, SimulatedSite, load_site
from tests import sample
from tests.gateway.bridge.harness import WAIT_S, Central, central, running_gateway

TODAY = date.today()
WALL = "wall-hallsberg"
DESK = "desk-1"
LOCKGATE = str(Path(sys.executable).with_name("lockgate"))


def site_settings(db_url: str, broker: PrivateMosquitto, site: SimulatedSite) -> Settings:
    """A gateway on ``db_url`` serving the site's controller and wall station (the desk
    station is left to ``lockgate station``), publishing on ``broker``."""
    base = f"t{uuid.uuid4().hex[:10]}"
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "base_topic": base,
                "client_id": f"gw-{base}",
                "session_expiry_s": 600,
                "keepalive_s": 10,
            },
            "sync": {
                "retry_initial_s": 0.05,
                "retry_max_s": 0.5,
                "device_timeout_s": 5.0,
                "tick_s": 0.2,
            },
            "stations": site.station_devices(),
            "controllers": site.controller_devices(),
        }
    )


def states(c: Central, number: str) -> list[RetainedCredentialState]:
    return [
        RetainedCredentialState.model_validate_json(payload)
        for payload, _ in c.on(f"v1/credential/{number}/state")
        if payload
    ]


def landed(state: RetainedCredentialState) -> bool:
    """The devices hold what the rules derived."""
    return (
        not state.pending
        and state.confirmed is not None
        and state.confirmed.revision == state.desired.revision
    )


async def state_where(
    c: Central, number: str, predicate: Callable[[RetainedCredentialState], bool]
) -> RetainedCredentialState:
    """The first published state of ``number`` that satisfies ``predicate``."""
    await c.wait_for(lambda: any(predicate(s) for s in states(c, number)), timeout=WAIT_S * 2)
    return next(s for s in states(c, number) if predicate(s))


def events(c: Central, kind: str) -> list[Any]:
    return [e for e in (Event.model_validate(x).root for x in c.events()) if e.kind == kind]


@asynccontextmanager
async def site_and_gateway(
    db_url: str, broker: PrivateMosquitto
) -> AsyncIterator[tuple[SimulatedSite, Settings, Central]]:
    async with SimulatedSite(load_site(DEFAULT_SITE), control_port=None) as site:
        settings = site_settings(db_url, broker, site)
        async with running_gateway(settings), central(broker, settings.mqtt.base_topic) as c:
            for i, command in enumerate(sample.sample_commands(TODAY)):
                assert (await c.request(command, f"s-{i}"))["status"] == "ok"
            yield site, settings, c


async def test_granted_and_revoked_credentials_of_every_kind_are_confirmed(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with site_and_gateway(f"sqlite:///{tmp_path}/g.db", broker) as (site, _, c):
        # Granted tag and visitor card: on the controller's allow-list.
        for number in (sample.TAG_ANNA, sample.VISITOR_CARD):
            state = await state_where(c, number, lambda s: s.desired.active and landed(s))
            assert state.confirmed is not None
        lists = [e for e in events(c, "programming_result") if e.number is None]
        assert lists and all(e.ok for e in lists)
        assert all(e.credential_revision is None and e.device_revision for e in lists)
        # A key not yet in a station is pending; programmed at the wall station, it is not.
        before = states(c, sample.KEY_ANNA)[-1]
        assert before.desired.active and before.pending and before.confirmed is None
        site.insert(WALL, sample.KEY_ANNA)
        key = await state_where(c, sample.KEY_ANNA, landed)
        assert key.desired.active
        site.remove(WALL)
        written = [e for e in events(c, "programming_result") if e.number == sample.KEY_ANNA]
        assert written[-1].ok
        assert written[-1].credential_revision == key.desired.revision
        assert written[-1].device_revision and written[-1].device_revision != key.desired.revision

        # Revoked tag and visitor card: removed from the controller, the revocation landed.
        assert (
            await c.request(
                m.ReportCredential(credential_number=sample.TAG_ANNA, outcome="lost"), "r-tag"
            )
        )["status"] == "ok"
        assert (await c.request(m.ReturnVisitorCard(number=sample.VISITOR_CARD), "r-card"))[
            "status"
        ] == "ok"
        for number in (sample.TAG_ANNA, sample.VISITOR_CARD):
            await c.wait_for(
                lambda n=number: any(  # type: ignore[misc]
                    e.number == n for e in events(c, "revocation_confirmed")
                )
            )
            state = await state_where(c, number, lambda s: s.desired.revoked and landed(s))
            assert state.desired.grants == []

        # A revoked key stays pending until a station rewrote it; then the revocation landed.
        assert (
            await c.request(
                m.ReportCredential(credential_number=sample.KEY_ANNA, outcome="lost"), "r-key"
            )
        )["status"] == "ok"
        revoked = await state_where(c, sample.KEY_ANNA, lambda s: s.desired.revoked)
        assert revoked.pending
        assert revoked.confirmed is not None
        assert revoked.confirmed.revision != revoked.desired.revision
        site.insert(WALL, sample.KEY_ANNA)
        await c.wait_for(
            lambda: any(e.number == sample.KEY_ANNA for e in events(c, "revocation_confirmed"))
        )
        await state_where(c, sample.KEY_ANNA, lambda s: s.desired.revoked and landed(s))
        site.remove(WALL)
        # A key in stock was never in a station: pending, nothing confirmed.
        stock = states(c, sample.KEY_IN_STOCK)[-1]
        assert stock.pending and stock.confirmed is None


async def test_the_desk_station_process_publishes_confirmed_states(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/g.db"
    async with site_and_gateway(url, broker) as (site, settings, c):
        desk = next(s for s in site.station_devices() if s["id"] == DESK)
        config = tmp_path / "lockgate.toml"
        mqtt = settings.mqtt
        config.write_text(
            f'[database]\nurl = "{url}"\n'
            f'[mqtt]\nhost = "{mqtt.host}"\nport = {mqtt.port}\n'
            f'base_topic = "{mqtt.base_topic}"\nclient_id = "desk-{mqtt.base_topic}"\n'
            f'[[stations]]\nid = "{DESK}"\ndriver = "serial-station"\noperated = true\n'
            f'options = {{ port = "{desk["options"]["port"]}" }}\n'
        )
        proc = await asyncio.create_subprocess_exec(
            LOCKGATE,
            "--config",
            str(config),
            "station",
            "--yes",
            "--once",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        )
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(30):
                while b"waiting for a key" not in await proc.stdout.readline():
                    pass
                site.insert(DESK, sample.KEY_CECILIA)
                out = (await proc.stdout.read()).decode()
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, out
        assert "programmed and verified" in out
        # The service's relay publishes what the station process wrote to the outbox.
        state = await state_where(c, sample.KEY_CECILIA, lambda s: s.confirmed is not None)
        assert landed(state), json.loads(state.model_dump_json())
        assert state.desired.active


def test_programming_results_name_both_revisions() -> None:
    fields = ProgrammingResult.model_fields
    assert "revision" not in fields
    assert fields["credential_revision"].description
    assert fields["device_revision"].description
