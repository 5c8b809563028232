"""The audit sink: programming results, confirmed revocations, device availability and access
events from real (simulated) hardware land in the hash chain, which still verifies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.audit import log as audit_log
from gateway.audit.sink import AuditSink
from gateway.commands import model as m
from gateway.compose import build_core
from gateway.config import Settings
from gateway.core import Core, Submission
from gateway.domain import DEFAULT_TIMEZONE
from gateway.runtime import CommitNotifier, Gateway
from gateway.store import migrate
from gateway.store.database import Database
from gateway.sync.engine import SyncService
from simulators.site import DEFAULT_SITE, SimulatedSite, load_site
from tests import sample
from tests.gateway.audit.util import LOADER, NOW, add_operator


async def until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def logged(db: Database, action: str) -> list[audit_log.Entry]:
    with db.session(readonly=True) as s:
        return audit_log.entries(s, action=action)


def test_events_become_entries_about_the_device_and_the_credential(db: Database) -> None:
    sink = AuditSink(lambda: NOW)
    with db.session() as s:
        sink.availability(s, "ctrl-office", False, "connection refused")
        sink.event(s, "revocation_confirmed", {"credential": "4000001", "device": "ctrl-office"})
        sink.event(
            s,
            "access_denied",
            {
                "key": "100000001",
                "cylinder": "200101",
                "via_station": "desk-1",
                "reason": "BLACKLISTED",
            },
        )
        sink.credential_state(s, Core(db), "4000001")  # derived: not logged
        found = audit_log.entries(s)
    assert [(e.actor, e.action, e.subjects) for e in found] == [
        ("ctrl-office", "device.offline", ["device ctrl-office"]),
        (
            "ctrl-office",
            "device.revocation_confirmed",
            ["device ctrl-office", "credential 4000001"],
        ),
        (
            "desk-1",
            "device.access_denied",
            ["device desk-1", "credential 100000001", "cylinder 200101"],
        ),
    ]
    assert found[0].data == {"reason": "connection refused"}


def test_an_entry_about_a_door_names_the_door(db: Database) -> None:
    sink = AuditSink(lambda: NOW)
    with db.session() as s:
        sink.event(
            s,
            "access_granted",
            {"credential": "4000001", "device": "ctrl-office", "door": 2, "at": NOW},
        )
        sink.event(s, "door_forced", {"device": "ctrl-office", "door": 1})
        found = audit_log.entries(s)
    assert [e.subjects for e in found] == [
        ["device ctrl-office", "credential 4000001", "door ctrl-office/2"],
        ["device ctrl-office", "door ctrl-office/1"],
    ]


async def test_a_running_site_fills_the_log(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    db = Database(sqlite_url)
    add_operator(db, LOADER, "system")
    spec = load_site(DEFAULT_SITE)
    today = datetime.now(UTC).astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()
    async with SimulatedSite(spec, control_port=None) as site:
        stations = site.station_devices()
        for st in stations:
            st["operated"] = False
        settings = Settings.model_validate(
            {
                "database": {"url": sqlite_url},
                "mqtt": {"enabled": False},
                "sync": {"retry_initial_s": 0.05, "retry_max_s": 0.5, "tick_s": 0.2},
                "stations": stations,
                "controllers": site.controller_devices(),
            }
        )
        notifier = CommitNotifier()
        core = build_core(settings, db=db, listeners=[notifier])
        sink = AuditSink(core.clock)
        sync = SyncService(settings, sink)
        gateway = Gateway(settings, core, notifier=notifier, services=[sync])
        await gateway.start()
        try:
            outcomes = await gateway.call(
                core.submit_many,
                [Submission(c, LOADER) for c in sample.sample_commands(today)],
            )
            assert all(o.ok for o in outcomes)
            worker = sync.controllers[sample.CONTROLLER]
            await until(lambda: worker.writes >= 1, "the first allow-list")
            assert (await site.present(sample.CONTROLLER, int(sample.TAG_ANNA), 1))["granted"]
            worker.wake()
            await until(lambda: bool(logged(db, "device.access_granted")), "an access event")
            blocked = await gateway.call(
                core.submit, Submission(m.BlockId06(card_number="ID06AN0001"), LOADER)
            )
            assert blocked.ok
            await until(
                lambda: any(
                    e.data.get("credential") == sample.TAG_ANNA
                    for e in logged(db, "device.revocation_confirmed")
                ),
                "the revocation confirmed",
            )
        finally:
            await gateway.stop()
    with db.session(readonly=True) as s:
        actions = {e.action for e in audit_log.entries(s)}
        verified = audit_log.verify(s)
    db.dispose()
    assert {
        "device.online",
        "device.allow_list_written",
        "device.access_granted",
        "device.revocation_confirmed",
        "id06_block",
    } <= actions
    assert verified.ok, verified.problem
