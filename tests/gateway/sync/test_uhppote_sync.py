"""The sync engine on a UHPPOTE controller (no atomic commit): the allow-list is written by
difference and read back, revocations are confirmed before new credentials are written,
events survive a gateway restart and lost ones are reported, the controller's own time
limits apply."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.commands import model as m
from gateway.domain import DEFAULT_TIMEZONE
from gateway.domain.facts import DoorRef, Space, VisitorReason
from gateway.store import device_records as sync_store
from gateway.sync.controller import REVOCATIONS_FIRST
from gateway.sync.engine import SyncService
from simulators.site import DEFAULT_SITE
from simulators.uhppote import UhppoteController
from tests import sample
from tests.gateway.sync.site import RunningSite, running_site

GATE = "uhppote-gate"


def today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()


def gate_in_office() -> m.PutSpace:
    """The office space with the gate's door 1 besides the Modbus doors."""
    return m.PutSpace(
        space=Space(
            id="sp-office",
            name="Kontor entré",
            doors=(
                DoorRef(controller_id=sample.CONTROLLER, door=1),
                DoorRef(controller_id=sample.CONTROLLER, door=2),
                DoorRef(controller_id=GATE, door=1),
            ),
        )
    )


def visitor(number: str) -> m.IssueVisitorCard:
    return m.IssueVisitorCard(
        number=number,
        holder_name="Gustav Gäst",
        company="Hissservice AB",
        mobile="+46709990002",
        sponsor_employment_id="emp-anna",
        reason=VisitorReason.SUPPLIER,
        space_ids=("sp-office",),
        valid_until=datetime.now(UTC) + timedelta(days=4),
        confirmed_in_person=True,
        return_duty_acknowledged=True,
    )


def gate(run: RunningSite) -> UhppoteController:
    return run.site.uhppote[GATE].controller()


def in_sync(run: RunningSite) -> bool:
    with run.core.db.session(readonly=True) as s:
        held = sync_store.get_controller(s, GATE)
    return held is not None and held.revision == run.core.engine.controller(GATE).revision


async def test_the_gate_is_written_read_back_and_a_revocation_confirmed(sqlite_url: str) -> None:
    async with running_site(sqlite_url, today()) as run:
        await run.submit(gate_in_office())
        await run.until(lambda: in_sync(run), what="the gate's allow-list")
        assert (await run.site.present(GATE, int(sample.TAG_ANNA), 1))["granted"] is True
        assert (await run.site.present(GATE, int(sample.TAG_ANNA), 2))["granted"] is False
        worker = run.sync.controllers[GATE]
        # The store holds the confirmation a moment before the worker notes its last write.
        await run.until(lambda: worker.last_write is not None, what="the write noted")
        requests = run.site.uhppote[GATE].server.requests
        before = len(requests)
        await run.submit(m.BlockId06(card_number="ID06AN0001"))
        await run.until(
            lambda: (
                ("revocation_confirmed", {"credential": sample.TAG_ANNA, "device": GATE})
                in run.sink.events
            ),
            what="the gate's revocation",
        )
        assert (await run.site.present(GATE, int(sample.TAG_ANNA), 1))["granted"] is False
        # By difference: one delete, then the read-backs; nothing else written.
        written = [r.function for r in list(requests)[before:] if r.function == "PUT_CARD"]
        deleted = [r.argument for r in list(requests)[before:] if r.function == "DELETE_CARD"]
        assert written == [] and deleted == [int(sample.TAG_ANNA)]


async def test_revocations_are_confirmed_before_new_credentials_are_written(
    sqlite_url: str,
) -> None:
    async with running_site(sqlite_url, today()) as run:
        await run.submit(gate_in_office())
        await run.until(lambda: in_sync(run), what="the gate's allow-list")
        run.site.uhppote[GATE].server.faults.drop = -1  # the gate falls silent
        await run.until(lambda: not run.online(GATE), what="the gate offline")
        new_cards = [str(5_100_000 + i) for i in range(30)]
        await run.submit(m.BlockId06(card_number="ID06AN0001"), *map(visitor, new_cards))
        mark = len(run.sink.events)
        run.site.uhppote[GATE].server.faults.drop = 0
        await run.until(lambda: in_sync(run), timeout=20.0, what="the gate back in sync")
        reports = [
            (kind, body)
            for kind, body in run.sink.events[mark:]
            if body.get("device") == GATE and kind in ("allow_list_written", "revocation_confirmed")
        ]
        revision = run.core.engine.controller(GATE).revision
        assert reports == [
            ("allow_list_written", reports[0][1]),
            ("revocation_confirmed", {"credential": sample.TAG_ANNA, "device": GATE}),
            ("allow_list_written", reports[2][1]),
        ], reports
        assert reports[0][1]["revision"] == revision + REVOCATIONS_FIRST
        assert reports[2][1]["revision"] == revision
        assert reports[2][1]["entries"] == len(new_cards) + 1  # and the first visitor card
        # (Whole days on this controller: a card valid from now on is held from tomorrow.)
        assert all(gate(run).card(int(card)) is not None for card in new_cards)
        assert gate(run).card(int(sample.TAG_ANNA)) is None


def _site_with_small_event_log(tmp_path: Path) -> Path:
    text = DEFAULT_SITE.read_text(encoding="utf-8").replace(
        'kind = "uhppote"', 'kind = "uhppote"\nevents = 40'
    )
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def _restart_sync(run: RunningSite) -> SyncService:
    """Stop the sync engine (the gateway's workers) and start a new one on the same store."""
    await run.sync.stop()
    sync = SyncService(run.sync.settings, run.sink)
    await sync.start(run.gateway)
    run.sync = sync
    return sync


def _stored(run: RunningSite) -> list[Any]:
    with run.core.db.session(readonly=True) as s:
        held = [e for e in sync_store.controller_events(s) if e.controller_id == GATE]
    return sorted(held, key=lambda e: e.sequence)


async def test_events_survive_a_restart_and_lost_ones_are_reported(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with running_site(
        sqlite_url, today(), site_file=_site_with_small_event_log(tmp_path)
    ) as run:
        try:
            await _lose_and_find_events(run)
        finally:
            await run.sync.stop()  # the one started here (the gateway stops its own)


async def _lose_and_find_events(run: RunningSite) -> None:
    await run.submit(gate_in_office())
    await run.until(lambda: in_sync(run), what="the gate's allow-list")
    await run.site.present(GATE, int(sample.TAG_ANNA), 1)
    await run.until(lambda: len(_stored(run)) == 1, what="the first event stored")
    # The gateway is down while three more cards are read: none is lost.
    await run.sync.stop()
    for _ in range(3):
        await run.site.present(GATE, 4_999_999, 1)
    await _restart_sync(run)
    run.sync.controllers[GATE].wake()
    await run.until(lambda: len(_stored(run)) == 4, what="the missed events")
    assert [e.sequence for e in _stored(run)] == [1, 2, 3, 4]  # none twice, none lost
    # Down again while 50 are read: the log keeps 40, ten are overwritten and reported.
    await run.sync.stop()
    for _ in range(50):
        await run.site.present(GATE, 4_999_999, 1)
    await _restart_sync(run)
    await run.until(lambda: len(_stored(run)) == 4 + 40, what="the events still held")
    lost = [body for kind, body in run.sink.events if kind == "controller_events_lost"]
    assert [(b["first"], b["last"], b["reason"]) for b in lost] == [(5, 14, "overwritten")]
    assert run.sync.controllers[GATE].events_lost == [(5, 14, "overwritten")]
    assert [e.sequence for e in _stored(run)][-1] == 54


async def test_each_controller_has_its_own_time_limits(sqlite_url: str) -> None:
    overrides = {"device_timeout_s": 0.75, "write_timeout_s": 3.0}
    async with running_site(
        sqlite_url, today(), controller_settings={"held_open_seconds": 30, **overrides}
    ) as run:
        worker = run.sync.controllers[GATE]
        assert (worker.timeout_s, worker.write_timeout_s) == (0.75, 3.0)
        await run.until(lambda: worker.writes >= 1, what="the gate's first write")
        # The configured held-open time is not a setting of this controller: it is left out
        # and the rest (pulse time, modes) is still kept.
        assert worker.error is None
        run.site.uhppote[GATE].server.faults.delay_s = 2.0  # slower than the operation limit
        await run.until(lambda: not run.online(GATE), what="the gate offline")
        _, reason = run.sink.devices[GATE]
        assert "within 0.75 s" in reason, reason
