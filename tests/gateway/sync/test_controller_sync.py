"""The sync engine keeps a real (simulated) Modbus controller's allow-list equal to the desired
one: initial sync, revocations first, power loss, events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from drivers.modbusdoor import registers as rm
from gateway.bridge.syncsink import BridgeSyncSink
from gateway.commands import model as m
from gateway.domain import DEFAULT_TIMEZONE
from gateway.store import device_records as sync_store
from tests import sample
from tests.gateway.sync.site import running_site

CTRL = sample.CONTROLLER


def today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()


async def test_the_controller_gets_its_allow_list_and_decides_by_it(sqlite_url: str) -> None:
    async with running_site(sqlite_url, today()) as run:
        worker = run.sync.controllers[CTRL]
        await run.until(lambda: worker.writes >= 1, what="the first allow-list write")
        granted = await run.site.present(CTRL, int(sample.TAG_ANNA), 1)
        assert granted["granted"] is True
        denied = await run.site.present(CTRL, 4999999, 1)
        assert denied["granted"] is False
        with run.core.db.session() as s:
            confirmed = sync_store.get_controller(s, CTRL)
            assert sync_store.get_job(s, "controller", CTRL) is None
        assert confirmed is not None
        assert confirmed.revision == run.core.engine.controller(CTRL).revision
        assert set(confirmed.credentials) == {sample.TAG_ANNA, sample.VISITOR_CARD}

        # events flow back: the grant and the deny are stored and reported
        worker.wake()
        await run.until(
            lambda: {"access_granted", "access_denied"} <= set(run.sink.kinds()),
            what="controller events",
        )
        with run.core.db.session() as s:
            stored = sync_store.controller_events(s)
        assert {e.kind for e in stored} >= {"granted", "denied"}
        # every denial says why, up to the MQTT event
        denial = next(body for kind, body in run.sink.events if kind == "access_denied")
        assert denial["reason"] == "unknown_credential"
        with run.core.db.session(readonly=True) as s:
            published = BridgeSyncSink(publisher=None, core=run.core)._map(  # type: ignore[arg-type]
                s, "access_denied", denial
            )
        assert published is not None
        assert published.kind == "access_denied"
        assert published.reason == "unknown_credential"


async def test_a_revocation_reaches_the_controller_and_is_confirmed(sqlite_url: str) -> None:
    async with running_site(sqlite_url, today()) as run:
        worker = run.sync.controllers[CTRL]
        await run.until(lambda: worker.writes >= 1, what="the first write")
        await run.submit(m.BlockId06(card_number="ID06AN0001"))
        await run.until(
            lambda: (
                ("revocation_confirmed", {"credential": sample.TAG_ANNA, "device": CTRL})
                in run.sink.events
            ),
            what="the revocation confirmed",
        )
        result = await run.site.present(CTRL, int(sample.TAG_ANNA), 1)
        assert result["granted"] is False


async def test_a_controller_that_lost_its_memory_is_resynced(sqlite_url: str) -> None:
    async with running_site(sqlite_url, today()) as run:
        worker = run.sync.controllers[CTRL]
        await run.until(lambda: worker.writes >= 1, what="the first write")
        sim = run.site.controllers[CTRL]
        await sim.power_loss()
        assert (await run.site.present(CTRL, int(sample.TAG_ANNA), 1))["granted"] is False
        await run.until(lambda: worker.writes >= 2, what="the resync after power loss")
        assert (await run.site.present(CTRL, int(sample.TAG_ANNA), 1))["granted"] is True
        assert "controller_memory_lost" in run.sink.kinds()


async def test_a_controller_not_holding_what_the_store_says_is_rewritten(
    sqlite_url: str,
) -> None:
    """As after restoring a database backup: the store believes the controller holds a list
    it does not hold. The checksum the worker reads at every poll reveals it."""
    from sqlalchemy import update

    from gateway.store.tables import controller_sync

    async with running_site(sqlite_url, today()) as run:
        worker = run.sync.controllers[CTRL]
        await run.until(lambda: worker.writes >= 1, what="the first write")
        writes = worker.writes
        with run.core.db.session() as s:
            s.execute(update(controller_sync).values(checksum=0x12345678))
        await run.until(lambda: worker.writes > writes, what="the rewrite")
        with run.core.db.session(readonly=True) as s:
            confirmed = sync_store.get_controller(s, CTRL)
        assert confirmed is not None
        assert confirmed.checksum == run.site.controllers[CTRL].memory.active_checksum


async def test_a_write_is_counted_only_once_its_confirmation_is_committed(
    sqlite_url: str,
) -> None:
    """``writes`` is what tests and benches wait for before they read the store: it must not
    run ahead of the transaction that records the confirmation. The sink holds that
    transaction open (on the core thread) until the test has looked at the counter."""
    import threading

    async with running_site(sqlite_url, today()) as run:
        worker = run.sync.controllers[CTRL]
        inside = threading.Event()
        release = threading.Event()
        original = run.sink.event

        def holding_event(session: Any, kind: str, body: dict[str, Any]) -> None:
            if kind == "allow_list_written" and body["device"] == CTRL and not release.is_set():
                inside.set()
                release.wait(10)
            original(session, kind, body)

        run.sink.event = holding_event  # type: ignore[method-assign]
        try:
            await run.until(inside.is_set, what="the confirming transaction")
            writes_while_uncommitted = worker.writes
        finally:
            release.set()
        assert writes_while_uncommitted == 0
        await run.until(lambda: worker.writes >= 1, what="the counted write")
        with run.core.db.session(readonly=True) as s:
            assert sync_store.get_controller(s, CTRL) is not None


async def test_a_controller_that_refuses_commits_stays_online_in_an_error_state(
    sqlite_url: str,
) -> None:
    """Availability is about reachability: a controller that answers but refuses every
    commit is retried with backoff, stays online, and its error state is reported once when
    it begins and once when it ends."""
    async with running_site(sqlite_url, today()) as run:
        worker = run.sync.controllers[CTRL]
        memory = run.site.controllers[CTRL].memory
        await run.until(lambda: worker.writes >= 1, what="the first write")
        memory.faults.reject_commits = True
        await run.submit(m.BlockId06(card_number="ID06AN0001"))

        def attempts() -> int:
            with run.core.db.session(readonly=True) as s:
                job = sync_store.get_job(s, "controller", CTRL)
            return job.attempts if job is not None else 0

        await run.until(lambda: attempts() >= 4, what="several refused commits")
        assert (CTRL, False) not in run.sink.availability_history
        assert run.online(CTRL)
        errors = [body for kind, body in run.sink.events if kind == "device_error"]
        assert len(errors) == 1
        assert errors[0]["device"] == CTRL
        assert "commit refused" in errors[0]["error"]
        memory.faults.reject_commits = False
        await run.until(lambda: "device_recovered" in run.sink.kinds(), what="the recovery")
        assert (CTRL, False) not in run.sink.availability_history
        with run.core.db.session(readonly=True) as s:
            assert sync_store.get_job(s, "controller", CTRL) is None


async def test_power_loss_restores_the_door_settings_and_the_clock(sqlite_url: str) -> None:
    """The desired state of a controller is more than its allow-list: the lock release and
    held-open times, the door modes and the clock are set at connection and restored after
    the controller lost its memory."""
    import time

    settings = {"pulse_seconds": 9, "held_open_seconds": 45, "door_modes": {"2": "unlocked"}}
    async with running_site(sqlite_url, today(), controller_settings=settings) as run:
        worker = run.sync.controllers[CTRL]
        sim = run.site.controllers[CTRL]
        memory = sim.memory

        def restored() -> bool:
            return (
                memory.pulse_seconds == 9
                and memory.held_open_seconds == 45
                and memory.door(2).mode is rm.DoorModeCode.UNLOCKED
                and memory.door(1).mode is rm.DoorModeCode.LOCKED
                and abs(memory.now() - time.time()) < 5
            )

        await run.until(lambda: worker.writes >= 1, what="the first write")
        await run.until(restored, what="the settings at the first connection")
        # The controller's clock is off by a year and then its memory is lost.
        memory.set_time(time.time() - 365 * 86400)
        await sim.power_loss()
        assert memory.pulse_seconds == rm.DEFAULT_PULSE_SECONDS
        assert memory.door(2).mode is rm.DoorModeCode.LOCKED
        await run.until(lambda: worker.writes >= 2, what="the resync after power loss")
        await run.until(restored, what="the settings and the clock restored")
        assert "controller_settings_written" in run.sink.kinds()
        assert "controller_clock_set" in run.sink.kinds()
        assert (await run.site.present(CTRL, int(sample.TAG_ANNA), 1))["granted"] is True
