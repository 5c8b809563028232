"""A write that fails at an agent's station reaches the core as the core's own station worker
records one (``key_programming_failed``, the job stays pending), once however often it is
delivered; while the core does not answer the agent's retained state says since when central
updates are waiting, and stops saying it once the core answers again; the key-image wait is
a setting of the agent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from gateway.agent import Agent
from gateway.agent.stations import WAITING
from gateway.bridge.sitepayloads import SiteAck, SiteState
from gateway.config import ConfigError, Settings, load_settings
from gateway.demo.broker import PrivateMosquitto
from gateway.store import device_records as sync_store
from tests import sample
from tests.gateway.agent.harness import state_file, until
from tests.gateway.agent.stationsite import WALL, StationSite, station_site

SIGNAL = int(sample.CYL_SIGNAL[0])


def _job(run: StationSite, serial: str) -> sync_store.Job | None:
    with run.core.db.session(readonly=True) as s:
        return sync_store.get_job(s, "key", serial)


async def test_a_key_pulled_out_during_the_write_is_reported_and_its_job_stays_pending(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with station_site(sqlite_url, broker, tmp_path, "keys-pulled") as run:
        # the simulated station (a real pty) loses the key after the first chunk of the write
        run.site.stations[WALL].faults.set("pull_key", after_chunks=1)
        visit = await run.program(sample.KEY_ANNA)
        assert visit.outcome == "pulled" and visit.answered
        await until(lambda: run.agent.store.waiting() == 0, what="the failure acknowledged")
        failed = run.events("key_programming_failed")
        assert [(b["key"], b["station"], b["outcome"]) for b in failed] == [
            (sample.KEY_ANNA, WALL, "pulled")
        ]
        assert failed[0]["error"] == visit.error
        job = _job(run, sample.KEY_ANNA)
        assert job is not None and job.attempts == 1 and job.last_error == visit.error
        with run.core.db.session(readonly=True) as s:
            assert sync_store.get_key(s, sample.KEY_ANNA) is None
        assert run.events("key_programmed") == []
        assert not run.site.visit(sample.KEY_ANNA, SIGNAL)["granted"]

        # the next visit writes it, and the job is done
        run.site.stations[WALL].faults.clear()
        assert (await run.program(sample.KEY_ANNA)).outcome == "written"
        await until(lambda: _job(run, sample.KEY_ANNA) is None, what="the job done")
        assert len(run.events("key_programming_failed")) == 1


async def test_a_write_that_fails_on_the_line_is_reported_as_failed(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with station_site(sqlite_url, broker, tmp_path, "keys-failed") as run:
        # the station's link drops in the middle of the write: a driver error, the worker
        # reconnects
        run.site.stations[WALL].faults.set("disconnect", after_chunks=1)
        run.site.insert(WALL, sample.KEY_ANNA)
        await until(lambda: run.events("key_programming_failed") != [], what="failure reported")
        (failed,) = run.events("key_programming_failed")
        assert (failed["key"], failed["station"], failed["outcome"]) == (
            sample.KEY_ANNA,
            WALL,
            "failed",
        )
        assert failed["error"]
        job = _job(run, sample.KEY_ANNA)
        assert job is not None and job.attempts == 1
        await until(lambda: run.agent.store.waiting() == 0, what="the outbox acknowledged")


async def test_a_failure_delivered_twice_is_recorded_once(
    db_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    site = "keys-failed-twice"
    async with station_site(db_url, broker, tmp_path, site) as run:
        # Anna's key is programmed (her job done); Björn's job is pending
        assert (await run.program(sample.KEY_ANNA)).outcome == "written"
        await until(lambda: _job(run, sample.KEY_ANNA) is None, what="Anna's job done")
        assert _job(run, sample.KEY_BJORN_MAIN) is not None
        base = f"lockgate/v1/site/{site}"
        at = datetime.now(UTC).isoformat()
        failures = [
            {
                "site": site,
                "seq": seq,
                "station": WALL,
                "serial": serial,
                "outcome": "pulled",
                "error": "key removed during the write",
                "version": 5,
                "at": at,
            }
            for seq, serial in ((9101, sample.KEY_ANNA), (9102, sample.KEY_BJORN_MAIN))
        ]
        acked: list[int] = []
        async with aiomqtt.Client(broker.host, broker.port, identifier="fake-agent") as c:
            await c.subscribe(f"{base}/ack", qos=1)
            for _ in range(2):
                for failure in failures:
                    await c.publish(f"{base}/key_failed", json.dumps(failure), qos=1)
            async with asyncio.timeout(10):
                async for msg in c.messages:
                    seqs = SiteAck.model_validate_json(msg.payload).seqs  # type: ignore[arg-type]
                    acked += [q for q in seqs if q in (9101, 9102)]
                    if len(acked) == 4:
                        break
        failed = run.events("key_programming_failed")
        assert sorted(b["key"] for b in failed) == sorted([sample.KEY_ANNA, sample.KEY_BJORN_MAIN])
        job = _job(run, sample.KEY_BJORN_MAIN)
        assert job is not None and job.attempts == 1
        assert _job(run, sample.KEY_ANNA) is None

        # after a restart of the core the hub still knows a pending key's failure from its job
        await run.stop_core()
        await run.start_core()
        # the new hub subscribed once it heard the agent's retained state
        await until(lambda: run.hub is not None and site in run.hub.sites, what="the hub back")
        async with aiomqtt.Client(broker.host, broker.port, identifier="fake-agent") as c:
            await c.subscribe(f"{base}/ack", qos=1)
            await c.publish(f"{base}/key_failed", json.dumps(failures[1]), qos=1)
            async with asyncio.timeout(10):
                async for msg in c.messages:
                    if 9102 in SiteAck.model_validate_json(msg.payload).seqs:  # type: ignore[arg-type]
                        break
        assert run.events("key_programming_failed") == []
        job = _job(run, sample.KEY_BJORN_MAIN)
        assert job is not None and job.attempts == 1


async def _retained_state(broker: PrivateMosquitto, site: str) -> SiteState:
    async with aiomqtt.Client(broker.host, broker.port, identifier="monitor") as c:
        await c.subscribe(f"lockgate/v1/site/{site}/state", qos=1)
        async with asyncio.timeout(5):
            async for msg in c.messages:
                return SiteState.model_validate_json(msg.payload)  # type: ignore[arg-type]
    raise AssertionError("no retained state")


async def _state_until(
    broker: PrivateMosquitto, site: str, ok: Callable[[SiteState], bool], what: str
) -> SiteState:
    """The site's retained state once ``ok`` holds for it (polled, 10 s at most)."""
    found: list[SiteState] = []

    async def check() -> bool:
        state = await _retained_state(broker, site)
        found[:] = [state]
        return ok(state)

    await until(check, 10, what=what)
    return found[0]


async def test_the_agents_retained_state_says_since_when_central_updates_wait(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    site = "keys-waiting"
    async with station_site(sqlite_url, broker, tmp_path, site) as run:
        assert (await run.program(sample.KEY_ANNA)).answered
        assert (await _retained_state(broker, site)).waiting_for_core is None
        await run.stop_core()
        run.station.wait_s = 1.0
        run.agent.key_link.ask_again_s = 0.5
        before = datetime.now(UTC)

        visit = await run.program(sample.KEY_BJORN_MAIN)
        assert not visit.answered and WAITING in visit.notice
        state = await _state_until(
            broker, site, lambda s: s.waiting_for_core is not None, "the waiting published"
        )
        assert state.online and state.reason == WAITING
        assert state.waiting_for_core is not None and state.waiting_for_core >= before
        since = state.waiting_for_core
        # a second unanswered visit keeps the first moment
        assert not (await run.program(sample.KEY_ANNA)).answered
        assert (await _retained_state(broker, site)).waiting_for_core == since

        # the core is back: the agent asks again, the core answers, the notice is cleared
        await run.start_core()
        await until(
            lambda: run.agent.key_link.waiting_since is None, 15, what="the core answers again"
        )
        state = await _state_until(
            broker, site, lambda s: s.waiting_for_core is None, "the waiting cleared"
        )
        assert state.online and run.agent.key_link.unanswered == set()


def test_the_key_image_wait_is_an_agent_setting(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    station = '[[stations]]\nid = "wall"\ndriver = "serial-station"\n'
    station += 'options = { port = "/dev/null" }\n'
    config.write_text(f"[agent]\nkey_wait_s = 1.5\n\n{station}")
    settings = load_settings(config)
    assert settings.agent.key_wait_s == 1.5
    agent = Agent(settings, "north", state_file(tmp_path, "north"))
    try:
        assert agent.stations["wall"].wait_s == 1.5
    finally:
        agent.store.close()
    assert Settings().agent.key_wait_s == 3.0

    for bad in ("0", "-1", "61", '"soon"'):
        config.write_text(f"[agent]\nkey_wait_s = {bad}\n")
        with pytest.raises(ConfigError, match=r"^config: agent\.key_wait_s: "):
            load_settings(config)


async def test_a_restarted_agent_still_says_since_when_central_updates_wait(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    site = "keys-waiting-restart"
    async with station_site(sqlite_url, broker, tmp_path, site) as run:
        await run.stop_core()
        run.station.wait_s = 1.0
        assert not (await run.program(sample.KEY_BJORN_MAIN)).answered
        state = await _state_until(
            broker, site, lambda s: s.waiting_for_core is not None, "the waiting published"
        )
        since = state.waiting_for_core
        settings, path = run.agent.settings, run.agent.store.path
        await run.agent.stop()

        # the agent restarts while the core is still away: its state says the same moment
        async with Agent(settings, site, path, resend_s=1.0, key_wait_s=1.0) as again:
            await until(again.connected.is_set, what="the agent connected again")
            assert again.key_link.waiting_since == since
            state = await _state_until(
                broker, site, lambda s: s.reason == "connected", "the restarted agent's state"
            )
            assert state.online and state.waiting_for_core == since

            # the core is back: asked again for the key it did not answer, it answers
            await run.start_core()
            await until(
                lambda: again.key_link.waiting_since is None, 15, what="the core answers again"
            )
            await _state_until(
                broker, site, lambda s: s.waiting_for_core is None, "the waiting cleared"
            )
        # and the cleared state is what the next start finds
        restarted = Agent(settings, site, path)
        try:
            assert restarted.key_link.waiting_since is None
            assert restarted.key_link.unanswered == set()
        finally:
            restarted.store.close()
