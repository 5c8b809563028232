"""Keys are programmed at simulated stations over a real pseudo-terminal, then open exactly
what the rules allow at offline cylinders; revocations travel as blacklists on other keys."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from gateway.commands import model as m
from gateway.domain import DEFAULT_TIMEZONE
from gateway.reports.exposure import BLACKLIST_PENDING, BLOCKED, exposure
from gateway.store import device_records as sync_store
from tests import sample
from tests.gateway.sync.site import RunningSite, running_site

DESK = "desk-1"
WALL = "wall-hallsberg"


def today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()


async def program(run: RunningSite, station: str, serial: str) -> str:
    worker = run.sync.stations[station]
    before = len(worker.visits)
    run.site.insert(station, serial)
    await run.until(lambda: len(worker.visits) > before, what=f"key {serial} served")
    outcome = worker.visits[-1].outcome
    if run.site.stations[station].device.key is not None:  # a fault may have pulled it
        run.site.remove(station)
    return outcome


async def test_a_key_is_programmed_and_opens_exactly_what_the_rules_allow(
    sqlite_url: str,
) -> None:
    async with running_site(sqlite_url, today()) as run:
        assert await program(run, DESK, sample.KEY_CECILIA) == "written"
        with run.core.db.session() as s:
            confirmed = sync_store.get_key(s, sample.KEY_CECILIA)
            assert sync_store.get_job(s, "key", sample.KEY_CECILIA) is None
        state = run.core.engine.state(sample.KEY_CECILIA)
        assert confirmed is not None and state is not None
        assert confirmed.credential_revision == state.revision
        allowed = set(sample.CYL_SIGNAL)
        for cylinder in (*sample.CYL_TECH, *sample.CYL_SIGNAL, *sample.CYL_DEPOT):
            decision = run.site.visit(sample.KEY_CECILIA, int(cylinder))
            assert decision["granted"] is (cylinder in allowed), (cylinder, decision)
        # Cecilia lacks ELSAK: the technical building says so
        refused = run.site.visit(sample.KEY_CECILIA, int(sample.CYL_TECH[0]))
        assert refused["reason"] == "NOT_PROGRAMMED"


async def test_an_inactive_key_is_written_empty_only_if_it_held_something(
    sqlite_url: str,
) -> None:
    async with running_site(sqlite_url, today()) as run:
        # a delivered key has nothing to take away: it is left as it is
        assert await program(run, DESK, sample.KEY_IN_STOCK) == "up_to_date"
        assert not run.site.visit(sample.KEY_IN_STOCK, int(sample.CYL_SIGNAL[0]))["granted"]


async def test_a_revoked_key_is_blacklisted_and_the_blacklist_travels_on_another_key(
    sqlite_url: str,
) -> None:
    async with running_site(sqlite_url, today()) as run:
        signal = int(sample.CYL_SIGNAL[0])
        assert await program(run, DESK, sample.KEY_ANNA) == "written"
        assert run.site.visit(sample.KEY_ANNA, signal)["granted"]

        # Anna's ID06 card is blocked; her key is out of reach, so cylinders must learn it
        await run.submit(m.BlockId06(card_number="ID06AN0001"))
        with run.core.db.session() as s:
            rows = exposure(s, run.core.engine, run.core.clock())
            job = sync_store.get_job(s, "key", sample.KEY_ANNA)
        assert job is not None and job.priority == sync_store.REVOCATION
        mine = {r.lock: r.status for r in rows if r.credential == sample.KEY_ANNA}
        assert mine[f"cylinder:{signal}"] == BLACKLIST_PENDING
        assert run.site.visit(sample.KEY_ANNA, signal)["granted"]  # not yet known there

        # Björn's key visits the wall station and carries the blacklist to the cylinder
        assert await program(run, WALL, sample.KEY_BJORN_MAIN) == "written"
        assert run.site.visit(sample.KEY_BJORN_MAIN, signal)["granted"]
        refused = run.site.visit(sample.KEY_ANNA, signal)
        assert not refused["granted"] and refused["reason"] == "BLACKLISTED"

        # Björn's next station visit brings the cylinder's confirmation back
        await program(run, WALL, sample.KEY_BJORN_MAIN)
        assert "blacklist_confirmed" in run.sink.kinds()
        with run.core.db.session() as s:
            rows = exposure(s, run.core.engine, run.core.clock())
        mine = {r.lock: r.status for r in rows if r.credential == sample.KEY_ANNA}
        assert mine[f"cylinder:{signal}"] == BLOCKED

        # When Anna's key itself comes in, it is emptied and nothing is exposed any more
        assert await program(run, DESK, sample.KEY_ANNA) == "written"
        assert ("revocation_confirmed", {"credential": sample.KEY_ANNA, "device": DESK}) in (
            run.sink.events
        )
        with run.core.db.session() as s:
            rows = exposure(s, run.core.engine, run.core.clock())
        assert not [r for r in rows if r.credential == sample.KEY_ANNA]
        assert not run.site.visit(sample.KEY_ANNA, int(sample.CYL_SIGNAL[1]))["granted"]


async def test_a_key_pulled_early_keeps_its_image_and_its_job(sqlite_url: str) -> None:
    async with running_site(sqlite_url, today()) as run:
        run.site.stations[DESK].faults.set("pull_key", after_chunks=1)
        outcome = await program(run, DESK, sample.KEY_ANNA)
        assert outcome == "pulled"
        assert not run.site.visit(sample.KEY_ANNA, int(sample.CYL_SIGNAL[0]))["granted"]
        with run.core.db.session() as s:
            assert sync_store.get_job(s, "key", sample.KEY_ANNA) is not None
            assert sync_store.get_key(s, sample.KEY_ANNA) is None
        run.site.stations[DESK].faults.clear()
        assert await program(run, DESK, sample.KEY_ANNA) == "written"
        assert run.site.visit(sample.KEY_ANNA, int(sample.CYL_SIGNAL[0]))["granted"]
